"""ONNX Runtime: the CPU EP (this machine's tables), and the CUDA and TensorRT EPs of onnxruntime-gpu.

Timed in a clean child process running run_bundle.py (``child_ep``), whose runners keep a GPU EP's
inputs on the device (IO binding); ``runner`` opens the same runner in this process."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import onnxruntime as ort

from prunesearch._workload import Workload
from prunesearch.graph._onnx import graph_plan
from prunesearch.oracle.profilers._base import Profiler, register_profiler
from prunesearch.standalone.run_bundle import PROVIDERS, CallRunner, graph_runner


class OrtProfiler(Profiler):
    takes = "onnx"
    #: what to install where the provider is missing
    install: ClassVar[str]

    @property
    def provider(self) -> str:
        return PROVIDERS[self.child_ep]

    def check(self) -> None:
        available = ort.get_available_providers()
        if self.provider not in available:
            raise self.unavailable(
                f"onnxruntime {ort.__version__} has no {self.provider} (it has {', '.join(available)}); {self.install}"
            )

    def version(self) -> str:
        return ort.__version__

    def runner(self, model: Path, *, workload: Workload, vocab: int) -> CallRunner:
        try:
            return graph_runner(Path(model), plan=graph_plan(workload, vocab=vocab), provider=self.provider)
        except RuntimeError as err:  # the EP failed to load and the session fell back to the CPU
            raise self.unavailable(f"{err}; {self.install}") from None


@register_profiler
class OrtCpu(OrtProfiler):
    name = "ort-cpu"
    child_ep = "cpu"
    install = "install onnxruntime"


@register_profiler
class OrtCuda(OrtProfiler):
    name = "ort-cuda"
    child_ep = "cuda"
    on_gpu = True
    precisions = ("fp32", "fp16")
    install = "install onnxruntime-gpu (pip install onnxruntime-gpu, in place of onnxruntime) with CUDA and cuDNN"


@register_profiler
class OrtTensorrt(OrtProfiler):
    name = "ort-tensorrt"
    child_ep = "tensorrt"
    on_gpu = True
    precisions = ("fp32", "fp16")
    install = (
        "install onnxruntime-gpu (pip install onnxruntime-gpu, in place of onnxruntime) and TensorRT "
        "(pip install tensorrt)"
    )
