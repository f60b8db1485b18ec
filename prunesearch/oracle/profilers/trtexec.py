"""TensorRT timing through the `trtexec` command line: fixed flags, parsers for its JSON exports, and the
``trtexec`` profiler.

--exportTimes writes one object per inference (latencyMs, computeMs, h2dMs, d2hMs, ...);
--exportProfile writes [{"count": N}, {"name", "timeMs", "averageMs", "medianMs", "percentage"}, ...].
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from prunesearch.errors import BackendUnavailableError, TableError
from prunesearch.oracle.measure import Measurement, summarise
from prunesearch.oracle.profilers.base import Profiler, graph_feeds


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


def parse_version(banner: str) -> str:
    """The TensorRT version in trtexec's first line, "&&&& RUNNING TensorRT.trtexec [TensorRT v100300]": 10.3.0
    (TensorRT 10+ encodes major·10000 + minor·100 + patch, 8 encoded major·1000 + minor·100 + patch)."""
    found = re.search(r"TensorRT v(\d+)", banner)
    if found is None:
        return "unknown"
    n = int(found.group(1))
    major, minor = (n // 10000, n // 100 % 100) if n >= 10000 else (n // 1000, n // 100 % 10)
    return f"{major}.{minor}.{n % 100}"


def run_trtexec(onnx: Path, workdir: Path, **flags) -> Measurement:
    Trtexec().check()
    times = Path(workdir) / f"{Path(onnx).stem}.times.json"
    done = subprocess.run(trtexec_command(onnx, times=times, **flags), capture_output=True, text=True)
    if done.returncode != 0:
        raise BackendUnavailableError(f"trtexec failed on {onnx}: {done.stdout[-500:]}{done.stderr[-500:]}")
    return parse_times(times)


class Trtexec(Profiler):
    """Each graph built and timed by trtexec with the fixed flags of ``trtexec_command`` (fp32, as tables record)."""
    name = "trtexec"
    on_gpu = True
    takes = "onnx"

    def check(self) -> None:
        if shutil.which("trtexec") is None:
            raise self.unavailable(
                "trtexec is not on PATH: install TensorRT (it ships in TensorRT/bin, or the nvcr.io tensorrt container)")

    def version(self) -> str:
        done = subprocess.run(["trtexec", "--help"], capture_output=True, text=True, timeout=60)
        return parse_version(done.stdout + done.stderr)

    def measure(
        self, model: Path, *, batch: int, seq_len: int, threads: int, vocab: int, cache_len: int = 0,
        budget_s: float = 1.0,
    ) -> Measurement:
        feeds = graph_feeds(model, batch=batch, seq_len=seq_len, vocab=vocab, cache_len=cache_len)
        shapes = ",".join(f"{name}:{'x'.join(map(str, value.shape))}" for name, value in feeds.items())
        with tempfile.TemporaryDirectory() as tmp:
            return run_trtexec(model, Path(tmp), precision="fp32", shapes=shapes, duration_s=max(1, math.ceil(budget_s)))
