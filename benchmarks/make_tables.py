"""Profile the shipped latency tables on this machine (side by side with the dense model, as every profile is).

Writes latency_tables/<cpu-slug>/<model>-ort-cpu-b<batch>-s<seq>-t<threads>.csv (+ .json provenance).
Usage: python benchmarks/make_tables.py [--only minilm] [--seq-len 128] [--dry-run]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from prunesearch.models import load_model
from prunesearch.oracle import device_slug, profile_table
from prunesearch.oracle.ensure import SHIPPED
from prunesearch.reporter import Reporter
from prunesearch.workload import Workload

#: (model, batch, threads): MiniLM b1/b8 x 1/2 threads; SmolLM2 prefill b1
#: (decode tables: `prunesearch profile --phase decode`)
GRID = [("minilm", 1, 1), ("minilm", 1, 2), ("minilm", 8, 1), ("minilm", 8, 2), ("smollm2", 1, 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="profile only this model alias")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--out-dir", type=Path, default=None, help="write here instead of latency_tables/<cpu-slug>/")
    parser.add_argument("--dry-run", action="store_true", help="list the tables, measure nothing")
    args = parser.parse_args()
    console = Console(stderr=True)
    for model, batch, threads in GRID:
        if args.only and model != args.only:
            continue
        workload = Workload(batch=batch, seq_len=args.seq_len, threads=threads)
        if args.dry_run:
            console.print(f"{model}: {workload.describe()}")
            continue
        loaded = load_model(model)
        start = time.perf_counter()
        table = profile_table(loaded, workload, reporter=Reporter(console))
        path = table.save(
            (args.out_dir or SHIPPED / device_slug(table.conditions.device)) / table.conditions.file_name()
        )
        console.print(f"{path}: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
