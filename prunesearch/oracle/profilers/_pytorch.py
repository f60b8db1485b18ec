"""torch itself: the pruned module timed under ``torch.inference_mode`` on the CPU or a CUDA GPU (CUDA graphs
where the forward can be captured), with the very inputs and output its ONNX export has."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar

import torch
from torch import nn

from prunesearch._workload import Workload
from prunesearch.graph._onnx import example_inputs, tensor_module
from prunesearch.oracle.profilers._base import Profiler, cuda_step, register_profiler
from prunesearch.standalone.run_bundle import CallRunner

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


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
    def timing(self, workload: Workload) -> Iterator[None]:
        """The workload's intra-op threads while timing; the process's own setting afterwards."""
        before = torch.get_num_threads()
        torch.set_num_threads(workload.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def runner(self, model: nn.Module, *, workload: Workload, vocab: int) -> CallRunner:
        """Moves ``model`` to the device in the workload's precision; token ids come from the model's own
        vocabulary."""
        w = workload
        dtype = PRECISIONS[w.precision]
        inputs = example_inputs(model, batch=w.batch, seq_len=w.seq_len, cache_len=w.cached)
        if self.target != "cpu" or dtype != torch.float32:
            model = copy.deepcopy(model)  # .to() moves a module in place: the caller's model stays as it was
        wrapped = tensor_module(model, decode=w.cached is not None).to(self.target, dtype)
        args = [t.to(self.target, dtype) if t.is_floating_point() else t.to(self.target) for t in inputs.values()]

        def forward() -> object:
            with torch.inference_mode():
                return wrapped(*args)

        return CallRunner(self.step(forward))


@register_profiler
class TorchCpu(TorchProfiler):
    name = "torch-cpu"
    target = "cpu"
    precisions = ("fp32", "bf16")  # CPU kernels for fp16 matmuls are slow or missing: not a deployment

    def check(self) -> None:
        """torch is a dependency: always available."""


@register_profiler
class TorchCuda(TorchProfiler):
    name = "torch-cuda"
    on_gpu = True
    target = "cuda"
    precisions = ("fp32", "fp16", "bf16")

    def check(self) -> None:
        if not torch.cuda.is_available():
            raise self.unavailable(
                f"this torch ({torch.__version__}) sees no CUDA GPU: install a CUDA build of torch "
                "(https://pytorch.org/get-started/locally) on a machine with an NVIDIA GPU"
            )

    def step(self, forward: Callable[[], object]) -> Callable[[], object]:
        return cuda_step(forward)
