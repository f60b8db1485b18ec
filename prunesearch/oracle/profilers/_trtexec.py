"""TensorRT timing through the `trtexec` command line: fixed flags, parsers for its JSON exports, and the
``trtexec`` profiler (an engine built once per graph, then one trtexec call per timed block).

--exportTimes writes one object per inference (latencyMs, computeMs, h2dMs, d2hMs, ...).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from prunesearch._workload import Workload
from prunesearch.errors import BackendUnavailableError, TableError
from prunesearch.graph._onnx import graph_feeds
from prunesearch.oracle.profilers._base import Profiler, register_profiler
from prunesearch.standalone.run_bundle import CallRunner


def trtexec_command(
    model: Path,
    *,
    times: Path | None = None,
    shapes: str | None = None,
    save_engine: Path | None = None,
    iterations: int = 10,
    warmup_ms: int = 200,
) -> list[str]:
    """Flags held fixed so timings stay comparable: CUDA graph, no data transfers, spin wait, a fixed warm-up.
    ``model``: an ONNX graph (built into an engine, saved to ``save_engine`` with inference skipped) or a saved
    engine (``.plan``), run ``iterations`` times with each inference written to ``times``. No precision flag:
    the graph's own types decide (strongly typed, the one way TensorRT 11 builds)."""
    source = f"--loadEngine={model}" if Path(model).suffix == ".plan" else f"--onnx={model}"
    cmd = ["trtexec", source, "--stronglyTyped"] if Path(model).suffix != ".plan" else ["trtexec", source]
    if shapes:
        cmd.append(f"--shapes={shapes}")
    if save_engine is not None:
        return [*cmd, f"--saveEngine={save_engine}", "--skipInference"]
    cmd += [
        f"--warmUp={warmup_ms}",
        f"--iterations={iterations}",
        "--duration=0",
        "--useCudaGraph",
        "--noDataTransfers",
        "--useSpinWait",
    ]
    return cmd + ([f"--exportTimes={times}"] if times is not None else [])


def parse_times(path: Path, *, key: str = "computeMs") -> list[float]:
    """One per-inference field in milliseconds (computeMs = GPU time; latencyMs includes transfers)."""
    try:
        rows = json.loads(Path(path).read_text())
        values = [float(r[key]) for r in rows]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TableError(f"{path} is not a trtexec --exportTimes file with {key!r} per inference ({err})") from err
    if not values:
        raise TableError(f"{path} holds no inferences: rerun trtexec with more --iterations")
    return values


def parse_version(banner: str) -> str:
    """The TensorRT version in trtexec's first line, "&&&& RUNNING TensorRT.trtexec [TensorRT v100300]": 10.3.0
    (TensorRT 10+ encodes major·10000 + minor·100 + patch, 8 encoded major·1000 + minor·100 + patch)."""
    found = re.search(r"TensorRT v(\d+)", banner)
    if found is None:
        return "unknown"
    n = int(found.group(1))
    major, minor = (n // 10000, n // 100 % 100) if n >= 10000 else (n // 1000, n // 100 % 10)
    return f"{major}.{minor}.{n % 100}"


def run_trtexec(model: Path, **flags) -> None:
    """trtexec with ``trtexec_command``'s flags; BackendUnavailableError naming its output when it fails."""
    Trtexec().check()
    done = subprocess.run(trtexec_command(model, **flags), capture_output=True, text=True)
    if done.returncode != 0:
        raise BackendUnavailableError(f"trtexec failed on {model}: {done.stdout[-500:]}{done.stderr[-500:]}")


@register_profiler
class Trtexec(Profiler):
    """Each graph built into an engine by trtexec once, then each timed block one trtexec run of that engine,
    its per-inference GPU compute times read from --exportTimes. Precision comes from the graph, exported in
    the workload's precision: no precision flag is passed, so the commands hold on TensorRT 10 and 11 alike
    (11 removed --fp16, --bf16, --int8 and --best)."""

    name = "trtexec"
    on_gpu = True
    takes = "onnx"
    precisions = ("fp32", "fp16", "bf16")

    def check(self) -> None:
        if shutil.which("trtexec") is None:
            raise self.unavailable(
                "trtexec is not on PATH: install TensorRT (it ships in TensorRT/bin, or the nvcr.io tensorrt container)"
            )

    def version(self) -> str:
        done = subprocess.run(["trtexec", "--help"], capture_output=True, text=True, timeout=60)
        return parse_version(done.stdout + done.stderr)

    def runner(self, model: Path, *, workload: Workload, vocab: int) -> CallRunner:
        feeds = graph_feeds(model, workload=workload, vocab=vocab)
        shapes = ",".join(f"{name}:{'x'.join(map(str, value.shape))}" for name, value in feeds.items())
        work = Path(tempfile.mkdtemp(prefix="prunesearch-trtexec-"))
        engine = work / f"{Path(model).stem}.plan"
        run_trtexec(model, shapes=shapes, save_engine=engine)
        return _EngineRunner(engine, shapes=shapes, work=work)


class _EngineRunner(CallRunner):
    """Each block one trtexec run of a saved engine: the engine's own per-inference GPU times, not Python's."""

    def __init__(self, engine: Path, *, shapes: str, work: Path) -> None:
        super().__init__(step=None, close=lambda: shutil.rmtree(work, ignore_errors=True))
        self.engine, self.shapes, self.times = engine, shapes, work / "times.json"

    def block(self, runs: int) -> list[float]:
        run_trtexec(self.engine, shapes=self.shapes, iterations=runs, times=self.times)
        return parse_times(self.times)[-runs:]
