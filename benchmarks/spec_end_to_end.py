"""A search spec end to end as a user runs it: `prunesearch search SPEC`, then `prunesearch export --run`.

Each command runs in its own process, timed by a clock outside it, with its peak resident memory three ways: the
largest single process (``ru_maxrss`` as ``wait4`` reports it), the command's and its largest child's own high-water
marks apart, and the largest sum over the command and its timing child at once (sampled every 50 ms);
$PRUNESEARCH_CACHE is an empty folder unless ``--cache`` names one, so the search builds its level database
(and, on a machine no shipped table covers, profiles its table) as on a first run.
The export's own figures (the pick measured beside the dense model, its quality at every stage) come from its
export.json.

    .venv/bin/python benchmarks/spec_end_to_end.py searches/smollm2-decode-125.yaml

Writes reports/spec_<name>.{md,json}.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from children import timed  # noqa: E402

CLI = str(Path(sys.executable).with_name("prunesearch"))


def quality_lines(quality: dict) -> list[str]:
    """One line per held-out text: each stage's figures and the last stage against dense."""
    lines = []
    for text, stages in quality.items():
        cells = [f"{stage} " + ", ".join(f"{k} {v:.4g}" for k, v in fig.items()) for stage, fig in stages.items()]
        last = list(stages.values())[-1]
        dense = stages.get("dense", {})
        ratio = next((f"{k} {last[k] / dense[k]:.3f} x dense" for k in ("perplexity", "spearman") if k in dense), "")
        lines.append(f"- {text}: " + "; ".join(cells) + (f" (**{ratio}**)" if ratio else ""))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", type=Path)
    ap.add_argument("--cache", type=Path, help="$PRUNESEARCH_CACHE to use (default: a new empty folder)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "reports")
    args = ap.parse_args()
    name = yaml.safe_load(args.spec.read_text())["name"]
    work = Path(tempfile.mkdtemp(prefix="spec-end-to-end-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRUNESEARCH_")}
    env["PRUNESEARCH_CACHE"] = str(args.cache or work / "cache")
    log, export = work / "log.txt", work / "export"
    steps = {
        "search": [CLI, "search", str(args.spec.resolve()), "--runs", str(work / "runs")],
        "export": [CLI, "export", "--run", str(work / "runs" / name), "--out", str(export)],
    }
    results = {}
    for step, cmd in steps.items():
        ran = timed(cmd, cwd=ROOT, env=env, log=log)
        results[step] = dataclasses.asdict(ran)
        print(step, results[step], flush=True)
        if ran.returncode:
            raise SystemExit(f"{step} failed (exit {ran.returncode}); its output: {log}")
    manifest = json.loads((export / "export.json").read_text())
    measured, recovery = manifest["measured"], manifest.get("recovery") or {}
    total = sum(r["seconds"] for r in results.values())
    summary = {
        "spec": str(args.spec),
        "date": str(dt.date.today()),
        "device": manifest["conditions"]["device"],
        "steps": results,
        "total_seconds": total,
        "speedup": measured["speedup"],
        "speedup_ci": [measured["speedup_low"], measured["speedup_high"]],
        "params": manifest["params"],
        "quality": manifest["quality"],
        "recovery_tokens": recovery.get("tokens", 0),
        # what a rerun of this pick needs (`export --model M --config`), and how its recovery went
        "config": manifest["config"],
        "recovery_stopped_early": recovery.get("stopped_early"),
        "recovery_history": recovery.get("history"),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"spec_{name}"
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    md = [
        f"# `{args.spec}` end to end",
        "",
        f"Command: `.venv/bin/python benchmarks/spec_end_to_end.py {' '.join(sys.argv[1:])}`; {dt.date.today()}, "
        f"{manifest['conditions']['device']}; $PRUNESEARCH_CACHE "
        + (f"`{args.cache}`" if args.cache else "empty at the start")
        + ". Each command a fresh process, timed from outside it.",
        "",
        "| command | wall clock (s) | peak RSS, the process or its largest child (MB) | the process itself (MB) "
        "| its largest child (MB) | all at once (MB) |",
        "|:--|--:|--:|--:|--:|--:|",
        *(
            f"| `prunesearch {step}` | {r['seconds']:.0f} | {r['peak_mb']:.0f} | {r['own_peak_mb'] or 'n/a'} "
            f"| {r['child_peak_mb'] or 'n/a'} | {r['tree_peak_mb'] or 'n/a'} |"
            for step, r in results.items()
        ),
        f"| both | **{total:.0f}** ({total / 60:.1f} min) | | | | |",
        "",
        f"The pick measured **{measured['speedup']:.3f}x** beside the dense model (95% CI "
        f"{measured['speedup_low']:.3f}-{measured['speedup_high']:.3f}x), {manifest['params'] / 1e6:.1f}M "
        f"parameters, after {summary['recovery_tokens']:,} tokens of recovery"
        + (" (stopped early: the validation loss stopped improving)" if summary["recovery_stopped_early"] else "")
        + ". Quality by stage:",
        "",
        *quality_lines(manifest["quality"]),
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
