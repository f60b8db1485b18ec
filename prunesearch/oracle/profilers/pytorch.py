"""torch itself: the pruned module timed under ``torch.inference_mode`` on the CPU or a CUDA GPU (CUDA graphs
where the forward can be captured), with the very inputs and output its ONNX export has."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar

import torch
from torch import nn

from prunesearch.export.onnx import example_inputs, tensor_module
from prunesearch.oracle.conditions import Conditions
from prunesearch.oracle.profilers.base import Profiler, cuda_step
from prunesearch.oracle.run_bundle import CallRunner


class TorchProfiler(Profiler):
    takes = "torch"
    #: where the module runs
    target: ClassVar[str]

    def version(self) -> str:
        return torch.__version__

    def step(self, forward: Callable[[], object]) -> Callable[[], object]:
        """One whole inference as timed."""
        return forward

    @contextmanager
    def timing(self, conditions: Conditions) -> Iterator[None]:
        """The conditions' intra-op threads while timing; the process's own setting afterwards."""
        before = torch.get_num_threads()
        torch.set_num_threads(conditions.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def runner(self, model: nn.Module, *, conditions: Conditions, vocab: int) -> CallRunner:
        """Moves ``model`` to the device; token ids are drawn from the model's own vocabulary."""
        c = conditions
        decode = c.phase == "decode"
        inputs = example_inputs(model, batch=c.batch, seq_len=c.seq_len, cache_len=c.cache_len if decode else None)
        wrapped = tensor_module(model, decode=decode).to(self.target)
        args = [t.to(self.target) for t in inputs.values()]

        def forward() -> object:
            with torch.inference_mode():
                return wrapped(*args)

        return CallRunner(self.step(forward))


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
