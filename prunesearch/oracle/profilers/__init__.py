"""Measurement backends behind one interface (base.Profiler): ONNX Runtime (CPU, CUDA, TensorRT EPs),
TensorRT's Python API, trtexec, and torch itself (CPU, CUDA).

Each backend module registers its profilers with ``register_profiler``; the registry imports every module of
this package on first use, so a new backend is one new module."""

from prunesearch.oracle.profilers._base import PROFILERS, Profiler, profiler_for, register_profiler

__all__ = ["PROFILERS", "Profiler", "profiler_for", "register_profiler"]
