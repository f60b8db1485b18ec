"""Measurement backends behind one interface (base.Profiler): ONNX Runtime (CPU, CUDA, TensorRT EPs),
TensorRT's Python API, trtexec, and torch itself (CPU, CUDA).

Each backend module registers its profilers with ``register_profiler``; every module of this package
is imported here, so a new backend is one new module."""

from __future__ import annotations

import importlib
import pkgutil

from prunesearch.oracle.profilers.base import PROFILERS, Profiler, profiler_for, register_profiler

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["PROFILERS", "Profiler", "profiler_for", "register_profiler"]
