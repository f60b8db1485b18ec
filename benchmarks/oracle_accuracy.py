"""Oracle accuracy: predicted vs measured speed-ups of whole pruned models on this machine.

Profiles a table, then measures random configs (never used to build or calibrate the table),
exported as whole ONNX models and timed side by side with the dense model after the profile, and
compares speed-ups. Decoders: the prefill pass, or with --phase decode one KV-cache decode step
after --cache-len cached tokens.

    .venv/bin/python benchmarks/oracle_accuracy.py --batch 1 --batch 8 --configs 100
    .venv/bin/python benchmarks/oracle_accuracy.py --model smollm2 --configs 100 --ship
    .venv/bin/python benchmarks/oracle_accuracy.py --model smollm2 --phase decode --cache-len 256 --configs 100 --ship

Writes reports/oracle_accuracy.{md,csv} (MiniLM) or reports/oracle_accuracy_<model>_<phase>.{md,csv};
--ship also saves each profiled table to latency_tables/<this cpu>/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

import prunesearch as ps
from prunesearch import Reporter, Workload
from prunesearch.oracle import SHIPPED, Conditions, Predictor, cpu_name, device_slug, profile_table, time_configs

REPORTS = Path(__file__).resolve().parents[1] / "reports"


def run(
    model: str,
    *,
    batch: int,
    seq_len: int | None,
    threads: int,
    phase: str | None,
    cache_len: int,
    configs: int,
    seed: int,
    ship: bool,
) -> tuple[pd.DataFrame, dict]:
    loaded = ps.load_model(model)
    reporter = Reporter(Console(stderr=True))
    started = time.monotonic()
    workload = Workload(batch=batch, seq_len=seq_len, threads=threads, phase=phase, cache_len=cache_len)
    table = profile_table(loaded, Conditions.here(loaded, workload, ffn_step=128), reporter=reporter)
    profile_s = time.monotonic() - started
    c = table.conditions
    if ship:
        print(f"shipped {table.save(SHIPPED / device_slug(c.device) / c.file_name())}")
    space = ps.adapter_for(loaded.model).space()
    calibrated, plain = Predictor(table, space), Predictor(table, space, calibrated=False)
    rng = np.random.default_rng(seed + 1000)  # apart from the table's calibration models
    genomes = {f"config-{i:03d}": rng.integers(0, space.genome_upper + 1) for i in range(configs)}
    with reporter.bar("measure", f"{configs} random configs beside the dense model") as update:
        measured = time_configs(
            loaded,
            {n: space.from_genome(g) for n, g in genomes.items()},
            conditions=c,
            progress=lambda stage, done, total: update(completed=done, total=total, description=stage),
        )
    rows = [
        {
            "model": model,
            "phase": c.phase,
            "batch": batch,
            "threads": threads,
            "config": str(space.from_genome(g)),
            "measured_speedup": measured[n].speedup,
            "measured_se": measured[n].se / measured[n].ratio,
            "predicted_speedup": float(calibrated.speedup(g)[0]),
            "additive_speedup": float(plain.speedup(g)[0]),
        }
        for n, g in genomes.items()
    ]
    df = pd.DataFrame(rows)
    summary = {
        "model": model,
        "phase": c.phase,
        "batch": batch,
        "seq_len": c.seq_len,
        "cache_len": c.cache_len,
        "threads": threads,
        "configs": configs,
        "profiling_s": round(profile_s, 1),
        "dense_ms (with the table)": round(table.meta.dense_ms, 3),
        "dense_ms (beside the configs)": round(measured.reference_ms, 3),
    }
    for name, col in (("calibrated", "predicted_speedup"), ("additive", "additive_speedup")):
        err = (df[col] / df.measured_speedup - 1).abs()
        summary |= {
            f"{name} within 5%": f"{(err <= 0.05).mean():.0%}",
            f"{name} within 10%": f"{(err <= 0.10).mean():.0%}",
            f"{name} median err": f"{err.median():.1%}",
            f"{name} max err": f"{err.max():.1%}",
        }
    return df, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument("--seq-len", type=int, default=None, help="default 128 (decode: 1 new token per step)")
    parser.add_argument("--phase", choices=["decode"], default=None, help="decoders: time one KV-cache decode step")
    parser.add_argument("--cache-len", type=int, default=0, help="with --phase decode: tokens already cached")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ship", action="store_true", help="save each profiled table to latency_tables/<this cpu>/")
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frames, summaries = [], []
    for batch in args.batch or [1]:
        df, summary = run(
            args.model,
            batch=batch,
            seq_len=args.seq_len,
            threads=args.threads,
            phase=args.phase,
            cache_len=args.cache_len,
            configs=args.configs,
            seed=args.seed,
            ship=args.ship,
        )
        frames.append(df)
        summaries.append(summary)
    REPORTS.mkdir(exist_ok=True)
    stem = REPORTS / (
        "oracle_accuracy" if args.model == "minilm" else f"oracle_accuracy_{args.model}_{summaries[0]['phase']}"
    )
    pd.concat(frames).to_csv(stem.with_suffix(".csv"), index=False)
    text = "\n".join(
        [
            f"# Oracle accuracy: {args.model}, {summaries[0]['phase']}",
            "",
            f"Command: `.venv/bin/python benchmarks/oracle_accuracy.py {' '.join(sys.argv[1:])}`; {dt.date.today()}; "
            f"CPU: {cpu_name()}; ONNX Runtime CPU, fp32.",
            "Each config is a random whole pruned model, exported and timed side by side with the dense model after",
            "the table was profiled; errors compare speed-ups over the dense model. 'additive' is the plain sum,",
            "'calibrated' adds the table's linear fit on its own calibration models (never among these).",
            "",
            pd.DataFrame(summaries).set_index("model").T.to_markdown(),
            "",
        ]
    )
    stem.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
