"""Memory of one measurement window: a few pruned configs timed beside the dense model, as a search's window does.

Each run is a fresh process that loads the model, prunes ``--configs`` configs (from near dense to about half),
exports their graphs and times them side by side with the dense model in the ONNX Runtime timing child
(``oracle.time_configs``) with one ``memory_gb`` (graphs held at once beside the reference; ``none``: the
default, at most the reference's size). Its wall clock, its largest process (``wait4``'s ``ru_maxrss``) and the
largest sum of it and the timing child at once are read from outside it. Values alternate, round by round.

    .venv/bin/python benchmarks/timing_memory.py --memory-gb none 4 --rounds 2

Writes reports/timing_memory.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from children import timed  # noqa: E402

#: the measured process: one window of configs, as the search's MeasurementLoop times them
CHILD = """
import sys
import numpy as np
import prunesearch as ps
from prunesearch._hf import is_causal_lm
from prunesearch._workload import Workload
from prunesearch.oracle import Conditions, TimingOptions, time_configs

model, configs, gb = sys.argv[1], int(sys.argv[2]), sys.argv[3]
loaded = ps.load_model(model)
if is_causal_lm(loaded.model.config):  # a decode step, as the decode specs time
    workload = Workload(batch=1, seq_len=1, threads=1, phase="decode", cache_len=256)
else:
    workload = Workload(batch=1, seq_len=128, threads=1)
conditions = Conditions.here(loaded, workload, ffn_step=128)
space = ps.adapter_for(loaded.model).space()
top = space.genome_upper
genomes = [np.rint(top * (1.0 - 0.5 * i / max(configs - 1, 1))).astype(int) for i in range(configs)]
time_configs(
    loaded,
    {f"config-{i}": space.from_genome(g) for i, g in enumerate(genomes)},
    conditions=conditions,
    options=TimingOptions(min_rounds=6, max_rounds=16, memory_gb=None if gb == "none" else float(gb)),
)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--configs", type=int, default=4)
    ap.add_argument("--memory-gb", nargs="+", default=["none", "4"], help="values to alternate ('none': the default)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "timing_memory.md")
    args = ap.parse_args()
    runs: dict[str, list] = {gb: [] for gb in args.memory_gb}
    with tempfile.TemporaryDirectory(prefix="timing-memory-") as tmp:
        for r in range(args.rounds):
            for gb in args.memory_gb:
                # an empty cache each: every run writes the dense graph, as a first search on a machine does
                env = {**os.environ, "PRUNESEARCH_CACHE": str(Path(tmp) / f"cache-{r}-{gb}")}
                cmd = [sys.executable, "-c", CHILD, args.model, str(args.configs), gb]
                ran = timed(cmd, cwd=ROOT, env=env, log=Path(tmp) / "log.txt")
                if ran.returncode:
                    raise SystemExit(f"memory_gb {gb} failed; its output: {Path(tmp) / 'log.txt'}")
                runs[gb].append(ran)
                print(f"round {r + 1}, memory_gb {gb}: {ran}", flush=True)
    lines = [
        "# Memory of one measurement window",
        "",
        f"Command: `.venv/bin/python benchmarks/timing_memory.py {' '.join(sys.argv[1:])}`; {dt.date.today()}.",
        f"{args.model}: {args.configs} pruned configs timed beside the dense model in one window, each run a fresh "
        "process with an empty cache (so each also exports the dense graph); values alternated round by round.",
        "",
        "| memory_gb | round | wall (s) | largest process (MB) | process and timing child at once (MB) |",
        "|:--|--:|--:|--:|--:|",
        *(
            f"| {gb} | {r + 1} | {ran.seconds:.0f} | {ran.peak_mb:.0f} | {ran.tree_peak_mb or 'n/a'} |"
            for gb, rs in runs.items()
            for r, ran in enumerate(rs)
        ),
    ]
    if len(runs) == 2:
        (a, ra), (b, rb) = runs.items()
        ratio = statistics.median(x.seconds / y.seconds for x, y in zip(ra, rb))
        lines += ["", f"Median over rounds of wall clock {a} / {b}: **{ratio:.2f}** (same window, alternated)."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
