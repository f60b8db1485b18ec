"""A toy measurement backend, in one module: a model "runs" for one microsecond per thousand parameters."""

from __future__ import annotations

import time

from torch import nn

from prunesearch import Workload
from prunesearch.oracle.profilers import Profiler, register_profiler
from prunesearch.standalone.run_bundle import CallRunner


@register_profiler
class ToyProfiler(Profiler):
    name = "toy-cpu"
    takes = "torch"

    def check(self) -> None:
        """Always available."""

    def version(self) -> str:
        return "1.0"

    def runner(self, model: nn.Module, *, workload: Workload, vocab: int) -> CallRunner:
        seconds = sum(p.numel() for p in model.parameters()) * 1e-9 * workload.batch

        def step() -> None:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                pass

        return CallRunner(step)
