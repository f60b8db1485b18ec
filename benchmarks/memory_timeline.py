"""Resident memory over a command's run, by what the package was doing: where a search or an export peaks.

memray (benchmarks/memory_profile.py) lists the allocations alive at the heap's high-water mark; resident
memory can peak elsewhere, as freed heap pages stay resident (glibc) and mapped weights become resident as
they are read. This runs one prunesearch command in this process and samples, every 20 ms from a thread,
the resident set (/proc/self/statm) and the main thread's innermost prunesearch frames. It reports the
peak, the largest resident memory seen in each stage (the innermost prunesearch function), and a
timeline.

    .venv/bin/python benchmarks/memory_timeline.py -- search searches/smollm2-decode.yaml --runs runs
    .venv/bin/python benchmarks/memory_timeline.py --out reports/memory_export.md -- export --run RUN --out DIR

Linux only. Writes reports/memory_timeline.md (or --out).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def package_frames(frame) -> list[str]:
    """The prunesearch frames of a stack, outermost first, as file:line:function."""
    return [
        f"{Path(fs.filename).name}:{fs.lineno}:{fs.name}"
        for fs in traceback.extract_stack(frame)
        if "prunesearch" in fs.filename and "benchmarks" not in fs.filename
    ]


class Sampler:
    def __init__(self, every: float = 0.02) -> None:
        self.every, self.samples, self.done = every, [], threading.Event()
        self.main = threading.get_ident()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self.done.wait(self.every):
            frame = sys._current_frames().get(self.main)
            self.samples.append((time.monotonic() - start, resident_mb(), package_frames(frame)))

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()


def stage(frames: list[str], depth: int = 3) -> str:
    return " <- ".join(reversed(frames[-depth:])) if frames else "(imports, start-up)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "memory_timeline.md")
    ap.add_argument("--stages", type=int, default=15, help="stages listed, largest first")
    ap.add_argument("--timeline-s", type=float, default=5.0, help="seconds between timeline rows")
    ap.add_argument("command", nargs="+", help="the prunesearch command (after --)")
    args = ap.parse_args()
    from prunesearch.cli import main as cli

    sys.argv = ["prunesearch", *args.command]
    code = 0
    with Sampler() as sampler:
        try:
            cli()
        except SystemExit as exc:
            code = exc.code or 0
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    samples = sampler.samples
    peak = max(samples, key=lambda s: s[1])
    by_stage: dict[str, tuple[float, float]] = {}
    for t, mb, frames in samples:
        key = stage(frames)
        if key not in by_stage or mb > by_stage[key][0]:
            by_stage[key] = (mb, t)
    lines = [
        "# Resident memory over a run",
        "",
        f"Command: `.venv/bin/python benchmarks/memory_timeline.py -- {' '.join(args.command)}`; {dt.date.today()}; "
        f"exit {code}, {samples[-1][0]:.0f} s.",
        f"Peak resident memory **{maxrss:.0f} MB** (ru_maxrss); the largest sample {peak[1]:.0f} MB at "
        f"{peak[0]:.1f} s, in `{stage(peak[2], 6)}`.",
        "",
        "Largest resident memory seen in each stage (the innermost prunesearch frames):",
        "",
        "| MB | at (s) | stage |",
        "|--:|--:|:--|",
    ]
    for key, (mb, t) in sorted(by_stage.items(), key=lambda kv: -kv[1][0])[: args.stages]:
        lines.append(f"| {mb:.0f} | {t:.1f} | `{key}` |")
    lines += ["", f"Every {args.timeline_s:g} s:", "", "| s | MB | stage |", "|--:|--:|:--|"]
    last = -1.0
    for t, mb, frames in samples:
        if t - last >= args.timeline_s:
            last = t
            lines.append(f"| {t:.0f} | {mb:.0f} | `{stage(frames, 2)}` |")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"peak {maxrss:.0f} MB; wrote {args.out}")
    sys.exit(code)


if __name__ == "__main__":
    main()
