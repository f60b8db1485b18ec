"""A benchmark's measurement in a fresh Python process: nothing of the parent's imports or heap in its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    """A command's exit status, wall-clock seconds and peak resident memory (its own, or its largest
    descendant's that it waited for: ``ru_maxrss`` of the child as ``wait4`` reports it)."""

    returncode: int
    seconds: float
    peak_mb: float


def timed(cmd: list[str], *, cwd: Path, env: dict, log: Path) -> Timed:
    """Run ``cmd`` in ``cwd`` with its output appended to ``log``; a clock outside the command times it."""
    started = time.monotonic()
    with log.open("a") as out:
        child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    return Timed(child.returncode, round(time.monotonic() - started, 1), round(usage.ru_maxrss / 1024))
