"""TensorRT timing through the `trtexec` command line: fixed flags, and parsers for its JSON exports.

--exportTimes writes one object per inference (latencyMs, computeMs, h2dMs, d2hMs, ...);
--exportProfile writes [{"count": N}, {"name", "timeMs", "averageMs", "medianMs", "percentage"}, ...].
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from prunesearch.errors import BackendUnavailableError, TableError
from prunesearch.oracle.measure import Measurement, summarise


def trtexec_command(onnx: Path, *, times: Path, profile: Path | None = None, precision: str = "fp16",
                    shapes: str | None = None, warmup_ms: int = 500, duration_s: int = 3) -> list[str]:
    """Flags held fixed so tables stay comparable: CUDA graph, no data transfers, spin wait, fixed warm-up/duration."""
    cmd = [
        "trtexec", f"--onnx={onnx}", f"--warmUp={warmup_ms}", f"--duration={duration_s}", "--useCudaGraph",
        "--noDataTransfers", "--useSpinWait", "--separateProfileRun", f"--exportTimes={times}",
    ]
    if precision in ("fp16", "bf16", "int8", "best"):
        cmd.append(f"--{precision}")
    if shapes:
        cmd.append(f"--shapes={shapes}")
    if profile is not None:
        cmd += [f"--exportProfile={profile}", "--profilingVerbosity=detailed"]
    return cmd


def parse_times(path: Path, *, key: str = "computeMs") -> Measurement:
    """One per-inference field, summarised like every other timing (computeMs = GPU time;
    latencyMs includes transfers)."""
    try:
        rows = json.loads(Path(path).read_text())
        values = np.array([float(r[key]) for r in rows])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TableError(f"{path} is not a trtexec --exportTimes file with {key!r} per inference ({err})") from err
    if values.size == 0:
        raise TableError(f"{path} holds no inferences: rerun trtexec with a longer --duration")
    return summarise(values)


def parse_profile(path: Path) -> dict[str, float]:
    """Median milliseconds per engine layer from a --exportProfile file."""
    try:
        entries = json.loads(Path(path).read_text())
        return {e["name"]: float(e["medianMs"]) for e in entries if "name" in e}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TableError(f"{path} is not a trtexec --exportProfile file ({err})") from err


def run_trtexec(onnx: Path, workdir: Path, **flags) -> Measurement:
    if shutil.which("trtexec") is None:
        raise BackendUnavailableError(
            "trtexec is not on PATH: install TensorRT (it ships in TensorRT/bin, or the nvcr.io tensorrt container)")
    times = Path(workdir) / f"{Path(onnx).stem}.times.json"
    done = subprocess.run(trtexec_command(onnx, times=times, **flags), capture_output=True, text=True)
    if done.returncode != 0:
        raise BackendUnavailableError(f"trtexec failed on {onnx}: {done.stdout[-500:]}{done.stderr[-500:]}")
    return parse_times(times)
