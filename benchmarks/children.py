"""A benchmark's measurement in a fresh Python process: nothing of the parent's imports or heap in its figures."""

from __future__ import annotations

import json
import subprocess
import sys
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
