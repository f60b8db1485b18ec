"""TensorRT through its Python API (10 and 11): each graph built into a strongly typed engine for the
workload's shapes (graph/_tensorrt.py), or a saved engine loaded, timed with ``execute_async_v3`` on a CUDA
stream, replayed from a CUDA graph where it can be captured. Buffers are torch CUDA tensors, so no pycuda
is needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prunesearch._workload import Workload
from prunesearch.graph._onnx import graph_feeds
from prunesearch.graph._tensorrt import input_profiles, serialize_network
from prunesearch.oracle.profilers._base import Profiler, cuda_step, register_profiler
from prunesearch.standalone.run_bundle import CallRunner


@register_profiler
class TensorrtProfiler(Profiler):
    name = "tensorrt"
    on_gpu = True
    takes = "onnx"
    precisions = ("fp32", "fp16", "bf16")

    def check(self) -> None:
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            raise self.unavailable(
                "the TensorRT Python API is not installed (pip install tensorrt, on a machine with an NVIDIA GPU)"
            ) from None
        import torch

        if not torch.cuda.is_available():
            raise self.unavailable(
                f"its buffers are torch CUDA tensors and this torch ({torch.__version__}) sees no CUDA GPU: "
                "install a CUDA build of torch (https://pytorch.org/get-started/locally)"
            )

    def version(self) -> str:
        import tensorrt

        return tensorrt.__version__

    def runner(self, model: Path, *, workload: Workload, vocab: int) -> CallRunner:
        """Builds ``model``'s engine (an ONNX graph, exported in the workload's precision) for the workload's
        shapes, or loads a saved engine (a .plan file); held until the runner closes."""
        import tensorrt as trt
        import torch

        model = Path(model)
        graph = model.with_suffix(".onnx")  # a saved engine sits beside the graph it was built from (export)
        feeds = graph_feeds(graph, workload=workload, vocab=vocab)
        serialized = (
            model.read_bytes()
            if model.suffix == ".plan"
            else serialize_network(model, profile=input_profiles(graph, workload=workload, vocab=vocab).__getitem__)
        )
        engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(serialized)
        context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        for name in inputs:
            context.set_input_shape(name, feeds[name].shape)
        buffers = []  # held for as long as the engine reads their addresses
        for name in names:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            if name in inputs:
                tensor = torch.from_numpy(feeds[name].astype(dtype)).cuda()
            else:
                shape = tuple(context.get_tensor_shape(name))
                tensor = torch.empty(shape, dtype=torch.from_numpy(np.empty(0, dtype)).dtype, device="cuda")
            context.set_tensor_address(name, tensor.data_ptr())
            buffers.append(tensor)

        def launch() -> None:
            if not context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
                raise RuntimeError(f"TensorRT {trt.__version__} could not enqueue the engine of {model}")

        def close() -> None:
            buffers.clear()

        return CallRunner(cuda_step(launch), close=close)
