"""A benchmark's measurement in a fresh Python process: nothing of the parent's imports or heap in its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path


def child_result(code: str, *args: str, cwd: Path, what: str, env: dict | None = None) -> dict:
    """Run ``python -c code *args`` in ``cwd`` and return the JSON object its stdout ends with; exit naming ``what``
    with the child's error when it fails. ``python -c`` puts ``cwd`` first on the path: a checkout's own package."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"{what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Timed:
    """A command's exit status, wall-clock seconds and peak resident memory: ``peak_mb`` its own or its largest
    descendant's (``ru_maxrss`` of the child as ``wait4`` reports it; a descendant's own figure starts at its
    parent's high-water mark, which Linux records in it when it execs, so it tells the largest process's size, not
    which one it was), ``tree_peak_mb`` the largest sum of the resident memory of the command and all its
    descendants at once, ``own_peak_mb`` the command's own high-water mark and ``child_peak_mb`` the largest of its
    descendants' (``VmHWM``: counted from each one's exec, so nothing inherited). The last three are sampled every
    50 ms, on Linux; None elsewhere."""

    returncode: int
    seconds: float
    peak_mb: float
    tree_peak_mb: float | None = None
    own_peak_mb: float | None = None
    child_peak_mb: float | None = None


PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _tree_mb(pid: int, high_water: dict[int, float]) -> float:
    """Resident MB of ``pid`` and its descendants now (0 for a process that has just gone); raises each one's entry
    in ``high_water`` to its ``VmHWM``."""
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE / 2**20
            with open(f"/proc/{p}/status") as f:
                hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
            high_water[p] = max(high_water.get(p, 0.0), hwm)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (OSError, ValueError, StopIteration):
            continue
    return total


def timed(cmd: list[str], *, cwd: Path, env: dict, log: Path) -> Timed:
    """Run ``cmd`` in ``cwd`` with its output appended to ``log``; a clock outside the command times it."""
    started = time.monotonic()
    tree_peak, high_water, done = [0.0], {}, threading.Event()
    with log.open("a") as out:
        child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        tree = os.path.isdir(f"/proc/{child.pid}/task")

        def sample() -> None:
            while not done.wait(0.05):
                tree_peak[0] = max(tree_peak[0], _tree_mb(child.pid, high_water))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        done.set()
        sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    own = high_water.pop(child.pid, None)
    return Timed(
        child.returncode,
        round(time.monotonic() - started, 1),
        round(usage.ru_maxrss / 1024),
        round(tree_peak[0]) if tree else None,
        round(own) if tree and own else None,
        round(max(high_water.values())) if tree and high_water else None,
    )
