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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_mb() -> tuple[float, float]:
    """(resident, of it file-backed: mapped weights, libraries) in MB; a file's clean pages can be dropped and
    read again, the rest (the heap, tensors made here) cannot."""
    with open("/proc/self/statm") as f:
        fields = f.read().split()
    return int(fields[1]) * PAGE / 2**20, int(fields[2]) * PAGE / 2**20


def max_resident_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class Sample:
    seconds: float
    resident_mb: float
    file_mb: float
    #: the process's peak so far: a spike shorter than the sampling interval shows here, in the next sample
    max_resident_mb: float
    frames: list[str]


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
            resident, file_backed = resident_mb()
            self.samples.append(
                Sample(time.monotonic() - start, resident, file_backed, max_resident_mb(), package_frames(frame))
            )

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
    maxrss = max_resident_mb()
    samples = sampler.samples
    peak = max(samples, key=lambda s: s.resident_mb)
    # the first sample to see the final peak: the spike happened during the interval before it
    spike = next((s for s in samples if s.max_resident_mb >= maxrss), samples[-1])
    by_stage: dict[str, Sample] = {}
    for sample in samples:
        key = stage(sample.frames)
        if key not in by_stage or sample.resident_mb > by_stage[key].resident_mb:
            by_stage[key] = sample
    lines = [
        "# Resident memory over a run",
        "",
        f"Command: `.venv/bin/python benchmarks/memory_timeline.py -- {' '.join(args.command)}`; {dt.date.today()}; "
        f"exit {code}, {samples[-1].seconds:.0f} s.",
        f"Peak resident memory **{maxrss:.0f} MB** (ru_maxrss), reached by {spike.seconds:.1f} s, in "
        f"`{stage(spike.frames, 6)}`; the largest sample {peak.resident_mb:.0f} MB ({peak.file_mb:.0f} MB of it "
        f"file-backed) at {peak.seconds:.1f} s, in `{stage(peak.frames, 6)}`.",
        "",
        "Largest resident memory seen in each stage (the innermost prunesearch frames); file-backed: pages of",
        "mapped files (weights loaded from safetensors, libraries), the rest is the heap's:",
        "",
        "| MB | file-backed MB | at (s) | stage |",
        "|--:|--:|--:|:--|",
    ]
    for key, sample in sorted(by_stage.items(), key=lambda kv: -kv[1].resident_mb)[: args.stages]:
        lines.append(f"| {sample.resident_mb:.0f} | {sample.file_mb:.0f} | {sample.seconds:.1f} | `{key}` |")
    lines += ["", f"Every {args.timeline_s:g} s:", "", "| s | MB | file-backed MB | stage |", "|--:|--:|--:|:--|"]
    last = -1.0
    for sample in samples:
        if sample.seconds - last >= args.timeline_s:
            last = sample.seconds
            row = f"{sample.seconds:.0f} | {sample.resident_mb:.0f} | {sample.file_mb:.0f}"
            lines.append(f"| {row} | `{stage(sample.frames, 2)}` |")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"peak {maxrss:.0f} MB; wrote {args.out}")
    sys.exit(code)


if __name__ == "__main__":
    main()
