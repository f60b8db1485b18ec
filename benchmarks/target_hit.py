"""Target hit: do searched speed-ups hold when a timer independent of prunesearch measures the export?

For each target speed-up and seed, the demo's search (MiniLM, ONNX Runtime CPU, this machine's table)
runs, its pick is exported as prunesearch exports it (measured picks), and the exported model.onnx is
timed against the dense model by benchmarks/side_by_side.py: fresh processes, a plain ONNX Runtime
session, dense and pruned alternated. The predictor's error is reported on those picks, and on random
configs never seen by the table (exported and timed the same way).

    .venv/bin/python benchmarks/target_hit.py                       # 1.5x, 2x, 3x; seeds 0, 1, 2; 40 random configs
    .venv/bin/python benchmarks/target_hit.py --targets 2 --seeds 0 --random 0
    .venv/bin/python benchmarks/target_hit.py --unseen               # as a machine the project has never seen

``--unseen`` hides the shipped tables ($PRUNESEARCH_TABLES empty) and starts from an empty $PRUNESEARCH_CACHE, so
the first search profiles this machine's table afresh (the others use it, as a user's later runs would).

Writes reports/target_hit.{md,csv} (with --unseen: reports/target_hit_unseen.{md,csv}).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from prunesearch import Reporter, load_spec, parse_spec, run_spec
from prunesearch.errors import PruneSearchError
from prunesearch.export import export_from_run
from prunesearch.graph import export_onnx
from prunesearch.prune import ReconstructionOptions, RecoveryOptions, prune

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from side_by_side import side_by_side  # noqa: E402  (the independent timer: no prunesearch code inside)

DEMO_SPEC = ROOT / "searches" / "minilm-ort-cpu-2x.yaml"
#: speed is what is checked here: the pick is exported as measured, without its refit and distillation (the
#: same shapes, so the same speed)
SPEED_ONLY = RecoveryOptions(tokens=0, reconstruction=ReconstructionOptions(tokens=0))


def spec_for(target: float, seed: int):
    data = json.loads(load_spec(DEMO_SPEC).model_dump_json())
    data |= {"name": f"target-hit-{target:g}x-seed{seed}", "seed": seed}
    data["target"] = {**data["target"], "speedup": target}
    return parse_spec(data, source=f"{DEMO_SPEC} at {target}x, seed {seed}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=float, nargs="+", default=[1.5, 2.0, 3.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--random", type=int, default=40, help="random held-out configs timed the same way")
    ap.add_argument("--pairs", type=int, default=5, help="independent timer: dense/model pairs per export")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "reports")
    ap.add_argument("--unseen", action="store_true", help="no shipped tables, an empty cache: profile this machine")
    args = ap.parse_args()
    name = "target_hit_unseen" if args.unseen else "target_hit"
    reporter = Reporter(Console(stderr=True))
    rows = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="target-hit-") as tmp:
        work = Path(tmp)
        if args.unseen:
            os.environ["PRUNESEARCH_TABLES"] = ""
            os.environ["PRUNESEARCH_CACHE"] = str(work / "cache")
        dense_onnx = None
        prepared = None
        for target in args.targets:
            for seed in args.seeds:
                spec = spec_for(target, seed)
                t0 = time.monotonic()
                outcome = run_spec(spec, run_dir=work / spec.name, reporter=reporter)
                prepared = outcome.prepared
                if dense_onnx is None:
                    dense_onnx = export_onnx(prepared.loaded.model, work / "dense.onnx", batch=1, seq_len=128)
                out = work / spec.name / "export"
                try:
                    manifest = export_from_run(
                        outcome.run,
                        pick="best",
                        out=out,
                        formats=["onnx"],
                        prepared=prepared,
                        recovery=SPEED_ONLY,
                        reporter=reporter,
                    )
                except PruneSearchError as exc:  # reported, not dropped: no candidate measured within the target
                    rows.append({"kind": "pick", "target": target, "seed": seed, "error": str(exc)})
                    continue
                timed = side_by_side(str(dense_onnx), [str(out / "model.onnx")], pairs=args.pairs)[
                    str(out / "model.onnx")
                ]
                chosen = next(c for c in manifest.candidates if c.chosen)
                searched = [m for m in prepared.oracle.measurements if m.stage == "search"]
                rows.append(
                    {
                        "kind": "pick",
                        "target": target,
                        "seed": seed,
                        "table_speedup": 1 / chosen.measured.table_ratio,
                        "predicted_speedup": manifest.predicted["speedup"],
                        "pick_measured_speedup": manifest.measured.speedup,
                        "candidates_measured": len(manifest.candidates),
                        "search_windows": len({m.window for m in searched}),
                        "independent_speedup": timed["speedup"],
                        "independent_low": min(timed["pairs"]),
                        "independent_high": max(timed["pairs"]),
                        "search_and_export_s": round(time.monotonic() - t0, 1),
                        "config": " ".join(f"{l['heads']}/{l['ffn']}" for l in manifest.config["layers"]),
                    }
                )
                reporter.line(f"{rows[-1]}")
        if args.random and prepared is not None:
            space, loaded, oracle = prepared.space, prepared.loaded, prepared.oracle
            rng = np.random.default_rng(1000)  # apart from the table's own calibration models
            graphs = []
            for i in range(args.random):
                genome = rng.integers(0, space.genome_upper + 1)
                config = space.from_genome(genome)
                path = export_onnx(prune(loaded.model, config), work / f"random-{i}.onnx", batch=1, seq_len=128)
                graphs.append(
                    (path, float(oracle.speedup(genome)[0]), float(1 / oracle.table_ratio(genome)[0]), config)
                )
            for path, predicted, table, config in graphs:
                timed = side_by_side(str(dense_onnx), [str(path)], pairs=3)[str(path)]
                rows.append(
                    {
                        "kind": "random",
                        "table_speedup": table,
                        "predicted_speedup": predicted,
                        "independent_speedup": timed["speedup"],
                        "independent_low": min(timed["pairs"]),
                        "independent_high": max(timed["pairs"]),
                        "config": " ".join(f"{l.heads}/{l.ffn}" for l in config.layers),
                    }
                )
                reporter.line(f"{rows[-1]}")
    df = pd.DataFrame(rows)
    df["error"] = df.get("error")
    ok = df.independent_speedup.notna()
    df.loc[ok, "prediction_error"] = df.predicted_speedup[ok] / df.independent_speedup[ok] - 1
    df.loc[ok, "table_error"] = df.table_speedup[ok] / df.independent_speedup[ok] - 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out_dir / f"{name}.csv", index=False)
    table = prepared.choice.describe() if prepared else "-"
    write(df, args, name=name, table=table, seconds=time.monotonic() - started)


def write(df: pd.DataFrame, args, *, name: str, table: str, seconds: float) -> None:
    picks, rand = df[df.kind == "pick"], df[df.kind == "random"]
    timed = picks[picks.independent_speedup.notna()]
    summary = {}
    if len(timed):
        hit = timed.independent_speedup / timed.target
        err = timed.prediction_error.abs()
        summary |= {
            "picks exported": f"{len(timed)} of {len(picks)}",
            "picks: worst independent speed-up / target": f"{hit.min():.3f}",
            "picks with independent speed-up >= 0.98 x target": f"{int((hit >= 0.98).sum())} of {len(timed)}",
            "picks: median |corrected prediction - independent| / independent": f"{err.median():.2%}",
            "picks: max": f"{err.max():.2%}",
            "picks: median |table prediction - independent| / independent": f"{timed.table_error.abs().median():.2%}",
            "picks: median |pick's measurement - independent| / independent": (
                f"{(timed.pick_measured_speedup / timed.independent_speedup - 1).abs().median():.2%}"
            ),
        }
    if len(rand):
        err = rand.prediction_error.abs()
        summary |= {
            "random configs within 5%": f"{(err <= 0.05).mean():.0%} of {len(rand)}",
            "random configs: median error": f"{err.median():.2%}",
            "random configs: max error": f"{err.max():.2%}",
        }
    cols = [
        "target",
        "seed",
        "table_speedup",
        "predicted_speedup",
        "pick_measured_speedup",
        "independent_speedup",
        "independent_low",
        "independent_high",
        "prediction_error",
        "table_error",
        "candidates_measured",
        "search_windows",
        "search_and_export_s",
        "config",
        "error",
    ]
    text = "\n".join(
        [
            "# Target hit: MiniLM, ONNX Runtime CPU, 1 thread, batch 1, 128 tokens"
            + (" (a machine the project has never seen)" if args.unseen else ""),
            "",
            f"Command: `.venv/bin/python benchmarks/target_hit.py {' '.join(sys.argv[1:])}`; {dt.date.today()}; "
            f"{seconds / 60:.0f} minutes; table {table}.",
            "Each pick is the demo spec's search at that target and seed, exported as `prunesearch export --pick best` "
            "exports it (the best candidate whose speed-up measured beside the dense model meets the target).",
            "'independent' is benchmarks/side_by_side.py: fresh processes, a plain ONNX Runtime session,",
            f"100 runs each, dense and pruned alternated ({args.pairs} pairs per pick, 3 per random config;",
            "the range over pairs shown).",
            "prediction_error = the oracle's corrected prediction (the table corrected by the configs measured during",
            "the search, made before the pick's window) / the independent speed-up - 1; table_error: the table's own.",
            "",
            pd.Series(summary, dtype=object).to_frame("value").to_markdown(),
            "",
            "Picks:",
            "",
            picks[[c for c in cols if c in picks]].to_markdown(index=False, floatfmt=".4g"),
            "",
            "Random configs:",
            "",
            rand[
                [
                    "table_speedup",
                    "predicted_speedup",
                    "independent_speedup",
                    "independent_low",
                    "independent_high",
                    "prediction_error",
                    "table_error",
                    "config",
                ]
            ].to_markdown(index=False, floatfmt=".4g")
            if len(rand)
            else "(none)",
            "",
        ]
    )
    (args.out_dir / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
