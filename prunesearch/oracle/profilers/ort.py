"""ONNX Runtime: the CPU EP (this machine's tables), and the CUDA and TensorRT EPs of onnxruntime-gpu."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import onnxruntime as ort

from prunesearch.oracle.measure import Measurement, measure_onnx
from prunesearch.oracle.profilers.base import Profiler, time_call
from prunesearch.oracle.run_bundle import feeds_for, ort_session


class OrtProfiler(Profiler):
    takes = "onnx"
    provider: ClassVar[str]
    #: what to install where the provider is missing
    install: ClassVar[str]

    def check(self) -> None:
        available = ort.get_available_providers()
        if self.provider not in available:
            raise self.unavailable(
                f"onnxruntime {ort.__version__} has no {self.provider} (it has {', '.join(available)}); {self.install}")

    def version(self) -> str:
        return ort.__version__


class OrtCpu(OrtProfiler):
    name = "ort-cpu"
    provider = "CPUExecutionProvider"
    install = "install onnxruntime"

    def measure(
        self, model: Path, *, batch: int, seq_len: int, threads: int, vocab: int, cache_len: int = 0,
        budget_s: float = 1.0,
    ) -> Measurement:
        return measure_onnx(model, batch=batch, seq_len=seq_len, threads=threads, vocab=vocab, cache_len=cache_len,
                            budget_s=budget_s)


class _OrtGpu(OrtProfiler):
    on_gpu = True

    def measure(
        self, model: Path, *, batch: int, seq_len: int, threads: int, vocab: int, cache_len: int = 0,
        budget_s: float = 1.0,
    ) -> Measurement:
        session = ort_session(model, threads=threads, provider=self.provider)
        if session.get_providers()[0] != self.provider:  # ONNX Runtime falls back to the CPU when an EP fails to load
            raise self.unavailable(
                f"onnxruntime could not start {self.provider} (session runs on {', '.join(session.get_providers())}); "
                f"{self.install}")
        # inputs placed on the GPU once and outputs left there: the timing is the graph, not PCIe copies
        binding = session.io_binding()
        for name, value in feeds_for(session, batch=batch, seq_len=seq_len, vocab=vocab, cache_len=cache_len).items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", 0))
        for output in session.get_outputs():
            binding.bind_output(output.name, "cuda")
        return time_call(lambda: session.run_with_iobinding(binding), budget_s=budget_s)


class OrtCuda(_OrtGpu):
    name = "ort-cuda"
    provider = "CUDAExecutionProvider"
    install = "install onnxruntime-gpu (pip install onnxruntime-gpu, in place of onnxruntime) with CUDA and cuDNN"


class OrtTensorrt(_OrtGpu):
    name = "ort-tensorrt"
    provider = "TensorrtExecutionProvider"
    install = ("install onnxruntime-gpu (pip install onnxruntime-gpu, in place of onnxruntime) and TensorRT "
               "(pip install tensorrt)")
