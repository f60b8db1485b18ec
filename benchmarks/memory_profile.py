"""Where a command's memory peaks: the allocations alive at its high-water mark, by the call stack that made them.

Runs one prunesearch command (default: a 6-evaluation SmolLM2-135M decode search against the shipped table of
another CPU, so no whole model is timed) under memray in a fresh process, then lists the largest allocations
alive at the peak of the heap, each with the stack that made it, and the process's peak resident memory.

    .venv/bin/python benchmarks/memory_profile.py                      # the search
    .venv/bin/python benchmarks/memory_profile.py -- export --run RUN --pick best --out DIR

Needs memray (pip install memray). Writes reports/memory_profile.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from search_memory import CHILD, spec_with_budget  # noqa: E402  (the same child: the CLI, then its peak memory)

TABLE = next((ROOT / "latency_tables").glob("*/smollm2-ort-cpu-decode-b1-s1-c256-t1.csv"), None)


def search_args(folder: Path, evaluations: int) -> list[str]:
    spec = spec_with_budget(ROOT / "searches" / "smollm2-decode.yaml", evaluations, folder, table=TABLE)
    return ["search", str(spec), "--runs", str(folder / "runs")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evaluations", type=int, default=6)
    ap.add_argument("--top", type=int, default=6)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "memory_profile.md")
    ap.add_argument("command", nargs="*", help="a prunesearch command instead of the search (after --)")
    args = ap.parse_args()
    import memray

    with tempfile.TemporaryDirectory(prefix="memory-profile-") as tmp:
        folder = Path(tmp)
        argv = args.command or search_args(folder, args.evaluations)
        capture = folder / "capture.bin"
        done = subprocess.run(
            [sys.executable, "-m", "memray", "run", "-q", "-o", str(capture), "-c", CHILD, *argv],
            capture_output=True,
            text=True,
            check=False,
        )
        rss = json.loads(done.stdout.strip().splitlines()[-1])["maxrss_kib"] / 1024
        records = memray.FileReader(str(capture)).get_high_watermark_allocation_records(merge_threads=True)
        records = sorted(records, key=lambda r: -r.size)
        heap = sum(r.size for r in records) / 2**20
        lines = [
            "# Where memory peaks",
            "",
            f"Command: `.venv/bin/python benchmarks/memory_profile.py {' '.join(sys.argv[1:])}`; {dt.date.today()}; "
            f"profiled: `prunesearch {' '.join(a if '/' not in a else Path(a).name for a in argv)}` under memray.",
            f"Peak resident memory {rss:.0f} MB; heap at its high-water mark {heap:.0f} MB. Largest allocations alive "
            "then, with the stack that made them (innermost first):",
            "",
            "| MB | allocations | stack |",
            "|--:|--:|:--|",
        ]
        for r in records[: args.top]:
            stack = " <- ".join(f"{fn} ({Path(file).name}:{line})" for fn, file, line in r.stack_trace()[:6])
            lines.append(f"| {r.size / 2**20:.0f} | {r.n_allocations} | {stack} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
