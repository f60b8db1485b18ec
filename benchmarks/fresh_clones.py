"""The demo as new users run it: fresh clones, `make demo`, and each export timed by an independent timer.

Each clone is a `git clone` of this repository into an empty folder with an empty $PRUNESEARCH_CACHE; it runs
`make install`, then `make demo` (timed apart: the demo's wall time is the second), and the export's model.onnx
is then timed against the dense model by benchmarks/side_by_side.py (fresh processes, a plain ONNX Runtime
session, nothing of prunesearch inside). ``--unseen`` removes the clone's shipped tables as well, so the demo
runs as on a machine the project has never seen: it profiles this machine's table first. A clone sits in a
temporary folder, not beside this checkout, so each demo is given the STS pairs file `make demo` finds beside
this checkout (``--sts``, by default ../shared/data/stsb-en-dev.csv where it exists) as ``make demo STS=...``.

    .venv/bin/python benchmarks/fresh_clones.py --clones 5 --unseen
    .venv/bin/python benchmarks/fresh_clones.py --clones 5

Writes reports/fresh_clones[_unseen].{md,csv}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from children import timed  # noqa: E402
from side_by_side import side_by_side  # noqa: E402  (the independent timer: no prunesearch code inside)

#: where `make demo` finds STS-B's dev split from this checkout (the Makefile's STS)
DEFAULT_STS = ROOT.parent / "shared" / "data" / "stsb-en-dev.csv"


def dense_graph(clone: Path, env: dict) -> Path:
    """The dense MiniLM as ONNX (batch 1, 128 tokens), written by the clone's own exporter."""
    path = clone / "dense.onnx"
    code = (
        "from prunesearch import load_model; from prunesearch.graph import export_onnx; "
        f"export_onnx(load_model('minilm').model, {str(path)!r}, batch=1, seq_len=128)"
    )
    subprocess.run([str(clone / ".venv/bin/python"), "-c", code], cwd=clone, env=env, check=True, capture_output=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clones", type=int, default=5)
    ap.add_argument("--unseen", action="store_true", help="remove each clone's shipped tables")
    ap.add_argument("--pairs", type=int, default=5, help="independent timer: dense/pruned pairs per export")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "reports")
    ap.add_argument(
        "--sts",
        type=Path,
        default=DEFAULT_STS if DEFAULT_STS.is_file() else None,
        help="the sentence-pairs file each demo scores its export on (default: the one `make demo` finds here)",
    )
    args = ap.parse_args()
    demo = ["make", "demo"] + ([f"STS={args.sts.resolve()}"] if args.sts else [])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    name = "fresh_clones_unseen" if args.unseen else "fresh_clones"
    rows = []
    for i in range(args.clones):
        work = Path(tempfile.mkdtemp(prefix="fresh-clone-"))
        clone, log = work / "prunesearch", work / "log.txt"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        if args.unseen:
            shutil.rmtree(clone / "latency_tables")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PRUNESEARCH_", "VIRTUAL_ENV"))}
        env["PRUNESEARCH_CACHE"] = str(work / "cache")
        install = timed(["make", "install"], cwd=clone, env=env, log=log)
        install_rc, install_s = install.returncode, install.seconds
        demo_rc, demo_s = (None, 0.0)
        if install_rc == 0:
            ran = timed(demo, cwd=clone, env=env, log=log)
            demo_rc, demo_s = ran.returncode, ran.seconds
        row = {"clone": i + 1, "commit": commit.strip(), "install_s": install_s, "demo_rc": demo_rc, "demo_s": demo_s}
        export = clone / "reports" / "demo" / "export"
        if demo_rc == 0:
            manifest = json.loads((export / "export.json").read_text())
            verified = manifest["verifications"][-1]["measured"]
            timer = side_by_side(str(dense_graph(clone, env)), [str(export / "model.onnx")], pairs=args.pairs)
            independent = timer[str(export / "model.onnx")]
            chosen = next(c for c in manifest["candidates"] if c["chosen"])
            row |= {
                "table": 1 / chosen["measured"]["table_ratio"],
                "corrected": manifest["predicted"]["speedup"],
                "pick_measured": manifest["measured"]["speedup"],
                "pick_low": manifest["measured"]["speedup_low"],
                "verify": verified["speedup"],
                "independent": independent["speedup"],
                "independent_low": min(independent["pairs"]),
                "independent_high": max(independent["pairs"]),
                "candidates": len(manifest["candidates"]),
                "measured_configs": len(manifest["measurements"]),
                "config": " ".join(f"{l['heads']}/{l['ffn']}" for l in manifest["config"]["layers"]),
            }
            for text, stages in manifest["quality"].items():
                last = stages.get("recovered") or stages.get("pruned") or {}
                row |= {f"{text} {k}": v for k, v in last.items()}
                if "spearman" in last and "dense" in stages:
                    row[f"{text} x dense"] = last["spearman"] / stages["dense"]["spearman"]
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(work, ignore_errors=True)
    df = pd.DataFrame(rows)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out_dir / f"{name}.csv", index=False)
    ok = df[df.demo_rc == 0]
    lines = [
        f"# `make demo` on fresh clones{' of a machine the project has never seen' if args.unseen else ''}",
        "",
        f"Command: `.venv/bin/python benchmarks/fresh_clones.py {' '.join(sys.argv[1:])}`; {dt.date.today()}.",
        "Each clone: `git clone`, an empty $PRUNESEARCH_CACHE"
        + (", its latency_tables/ removed" if args.unseen else "")
        + ", `make install`, `make demo`; the export's model.onnx then timed against the dense model by",
        f"benchmarks/side_by_side.py ({args.pairs} pairs of fresh processes, plain ONNX Runtime; range over pairs).",
        "",
        f"- `make demo` exited 0 in {len(ok)} of {len(df)} clones"
        + (f"; wall time {ok.demo_s.min():.0f}-{ok.demo_s.max():.0f} s" if len(ok) else ""),
    ]
    if len(ok):
        err = (ok.corrected / ok.independent - 1).abs()
        lines += [
            f"- independent speed-up of the exports: {ok.independent.min():.3f}x-{ok.independent.max():.3f}x",
            f"- |corrected prediction - independent|: median {err.median():.2%}, max {err.max():.2%}",
        ]
        lines += [
            f"- {c.removesuffix(' x dense')}: {ok[c].min():.3f}-{ok[c].max():.3f} x dense"
            for c in ok.columns
            if c.endswith(" x dense")
        ]
    lines += ["", df.to_markdown(index=False, floatfmt=".4g"), ""]
    (args.out_dir / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
