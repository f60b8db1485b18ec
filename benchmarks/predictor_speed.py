"""Predictor throughput: configs per second through the vectorised additive sum.

    .venv/bin/python benchmarks/predictor_speed.py [--table T] [--configs 1000000]

Times Predictor.latency_ms on random genomes of the table's model (best of 5 passes, one batch each)
and writes reports/predictor_speed.md. The issue's goal is at least 1e6 configs/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import numpy as np

from prunesearch import load_model
from prunesearch.oracle import LatencyTable, Predictor, cpu_name
from prunesearch.space import adapter_for

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "latency_tables" / "amd-epyc-family-25-model-17-stepping-1" / "minilm-ort-cpu-b1-s128-t1.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=Path, default=DEFAULT)
    ap.add_argument("--configs", type=int, default=1_000_000)
    args = ap.parse_args()
    table = LatencyTable.load(args.table)
    loaded = load_model(table.conditions.model)
    space = adapter_for(loaded.model).space(ffn_step=table.conditions.ffn_step)
    predictor = Predictor(table, space)
    genomes = np.random.default_rng(0).integers(0, space.genome_upper + 1, size=(args.configs, len(space.genome_upper)))
    seconds = []
    for _ in range(5):
        start = time.perf_counter()
        predictor.latency_ms(genomes)
        seconds.append(time.perf_counter() - start)
    rate = args.configs / min(seconds)
    shown = args.table.relative_to(ROOT) if args.table.is_relative_to(ROOT) else args.table
    text = "\n".join(
        [
            "# Predictor throughput",
            "",
            f"Command: `.venv/bin/python benchmarks/predictor_speed.py --configs {args.configs}`; {dt.date.today()}; "
            f"CPU: {cpu_name()}; table {shown}.",
            "",
            f"{args.configs:,} random {table.conditions.model} genomes ({len(space.genome_upper)} entries) "
            "in one call: "
            f"best of 5 {min(seconds) * 1000:.1f} ms, median {sorted(seconds)[2] * 1000:.1f} ms -> "
            f"**{rate:,.0f} configs/s** (goal 1,000,000).",
            "",
        ]
    )
    (ROOT / "reports").mkdir(exist_ok=True)
    (ROOT / "reports" / "predictor_speed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
