"""torch itself: the pruned module timed under ``torch.inference_mode`` on the CPU or a CUDA GPU (CUDA graphs
where the forward can be captured), with the very inputs and output its ONNX export has."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from prunesearch.export.onnx import example_inputs, tensor_module
from prunesearch.oracle.measure import Measurement
from prunesearch.oracle.profilers.base import Profiler, cuda_step, time_call


class TorchProfiler(Profiler):
    takes = "torch"
    #: where the module runs
    target: ClassVar[str]

    def version(self) -> str:
        return torch.__version__

    def step(self, forward: Callable[[], object]) -> Callable[[], object]:
        """One whole inference as timed."""
        return forward

    def measure(
        self, model: nn.Module, *, batch: int, seq_len: int, threads: int, vocab: int, cache_len: int = 0,
        budget_s: float = 1.0,
    ) -> Measurement:
        """Moves ``model`` to the device; token ids are drawn from the model's own vocabulary."""
        decode = cache_len > 0
        inputs = example_inputs(model, batch=batch, seq_len=seq_len, cache_len=cache_len if decode else None)
        wrapped = tensor_module(model, decode=decode).to(self.target)
        args = [t.to(self.target) for t in inputs.values()]
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                return time_call(self.step(lambda: wrapped(*args)), budget_s=budget_s)
        finally:
            torch.set_num_threads(before)  # the process's other work keeps its own setting


class TorchCpu(TorchProfiler):
    name = "torch-cpu"
    target = "cpu"

    def check(self) -> None:
        """torch is a dependency: always available."""


class TorchCuda(TorchProfiler):
    name = "torch-cuda"
    on_gpu = True
    target = "cuda"

    def check(self) -> None:
        if not torch.cuda.is_available():
            raise self.unavailable(
                f"this torch ({torch.__version__}) sees no CUDA GPU: install a CUDA build of torch "
                "(https://pytorch.org/get-started/locally) on a machine with an NVIDIA GPU")

    def step(self, forward: Callable[[], object]) -> Callable[[], object]:
        return cuda_step(forward)
