"""Measurement backends behind one interface (base.Profiler): ONNX Runtime (CPU, CUDA, TensorRT EPs),
TensorRT's Python API, trtexec, and torch itself (CPU, CUDA)."""

from __future__ import annotations

from prunesearch.errors import PruneSearchError
from prunesearch.oracle.profilers.base import Profiler
from prunesearch.oracle.profilers.ort import OrtCpu, OrtCuda, OrtTensorrt
from prunesearch.oracle.profilers.pytorch import TorchCpu, TorchCuda
from prunesearch.oracle.profilers.tensorrt_api import TensorrtProfiler
from prunesearch.oracle.profilers.trtexec import Trtexec

#: every backend by the name table Conditions record
PROFILERS: dict[str, type[Profiler]] = {
    p.name: p for p in (OrtCpu, OrtCuda, OrtTensorrt, TensorrtProfiler, Trtexec, TorchCpu, TorchCuda)
}


def profiler_for(backend: str) -> Profiler:
    """The profiler of ``backend``; whether it can run here is its ``check()``."""
    try:
        return PROFILERS[backend]()
    except KeyError:
        raise PruneSearchError(f"unknown backend {backend!r}: choose from {', '.join(PROFILERS)}") from None


__all__ = ["PROFILERS", "Profiler", "profiler_for"]
