"""Profile the shipped latency tables on this machine (side by side with the dense model, as every profile is).

Writes latency_tables/<cpu-slug>/<conditions>.csv (+ .json provenance): the workloads the shipped searches
ask for (searches/*.yaml with `table: auto`), and MiniLM at batch 8 and at 2 threads.
Usage: python benchmarks/make_tables.py [--only minilm] [--dry-run]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from prunesearch import Reporter, Workload, load_model
from prunesearch.oracle import SHIPPED, Conditions, device_slug, profile_table

#: MiniLM batch 1 at 1 and 2 threads, batch 8 at 1 thread; SmolLM2 prefill and a decode step after 256
#: cached tokens, 1 thread
GRID = [
    ("minilm", Workload(batch=1, seq_len=128, threads=1)),
    ("minilm", Workload(batch=1, seq_len=128, threads=2)),
    ("minilm", Workload(batch=8, seq_len=128, threads=1)),
    ("smollm2", Workload(batch=1, seq_len=128, threads=1)),
    ("smollm2", Workload(batch=1, phase="decode", seq_len=1, cache_len=256, threads=1)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="profile only this model alias")
    parser.add_argument("--out-dir", type=Path, default=None, help="write here instead of latency_tables/<cpu-slug>/")
    parser.add_argument("--dry-run", action="store_true", help="list the tables, measure nothing")
    args = parser.parse_args()
    console = Console(stderr=True)
    for model, workload in GRID:
        if args.only and model != args.only:
            continue
        if args.dry_run:
            console.print(f"{model}: {workload.describe()}")
            continue
        loaded = load_model(model)
        start = time.perf_counter()
        table = profile_table(loaded, Conditions.here(loaded, workload, ffn_step=128), reporter=Reporter(console))
        path = table.save(
            (args.out_dir or SHIPPED / device_slug(table.conditions.device)) / table.conditions.file_name()
        )
        console.print(f"{path}: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
