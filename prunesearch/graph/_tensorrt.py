"""TensorRT engines from the exported ONNX graph (Python API when tensorrt is installed).

Precision comes from the graph: prunesearch exports it in the workload's precision, and the network
is strongly typed, the one way TensorRT 11 builds and the recommended one since 10.12 (11 removed
the FP16/BF16/INT8 builder flags and trtexec's --fp16/--bf16/--int8/--best). So one build path holds
on 10 and 11 alike. A decode-step graph gets an optimisation profile over its KV cache's length:
from one cached token, best at the workload's ``cache_len``, up to twice it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prunesearch._workload import Workload
from prunesearch.errors import BackendUnavailableError

#: (min, opt, max) shape of one graph input
Profile = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def input_profiles(onnx: Path, *, workload: Workload, vocab: int) -> dict[str, Profile]:
    """Each graph input's optimisation profile: fixed at the workload's shapes, but a decode step's cache
    (past keys/values, and the mask over cached plus new tokens) ranging over 1 .. 2 x cache_len."""
    from prunesearch.graph._onnx import graph_feeds

    feeds = graph_feeds(onnx, workload=workload, vocab=vocab)
    profiles = {}
    for name, value in feeds.items():
        shape = tuple(value.shape)
        if workload.cached and name.startswith("past."):
            b, h, c, d = shape
            profiles[name] = ((b, h, 1, d), shape, (b, h, 2 * c, d))
        elif workload.cached and name == "attention_mask":
            b, total = shape
            new = total - workload.cache_len
            profiles[name] = ((b, 1 + new), shape, (b, 2 * workload.cache_len + new))
        else:
            profiles[name] = (shape, shape, shape)
    return profiles


def trtexec_command(onnx: Path, engine: Path, *, profiles: dict[str, Profile]) -> str:
    def shapes(k: int) -> str:
        return ",".join(f"{name}:{'x'.join(map(str, p[k]))}" for name, p in profiles.items())

    return (
        f"trtexec --onnx={onnx} --saveEngine={engine} --stronglyTyped --minShapes={shapes(0)} "
        f"--optShapes={shapes(1)} --maxShapes={shapes(2)} --useCudaGraph --noDataTransfers "
        "--warmUp=500 --iterations=200"
    )


def build_engine(onnx: Path, engine: Path, *, workload: Workload, vocab: int) -> Path:
    """Serialise an engine of ``onnx`` for the workload's shapes (see the module docstring)."""
    profiles = input_profiles(onnx, workload=workload, vocab=vocab)
    command = trtexec_command(onnx, engine, profiles=profiles)
    Path(engine).write_bytes(
        serialize_network(onnx, profile=profiles.__getitem__, missing=f"; equivalent command: {command}")
    )
    return Path(engine)


def serialize_network(onnx: Path, *, profile: Callable[[str], Profile], missing: str = "") -> bytes:
    """A strongly typed engine (``build_serialized_network``) with ``profile(name)`` as each input's
    (min, opt, max) shapes; ``missing`` ends the message raised where TensorRT is not installed."""
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendUnavailableError(
            f"TensorRT is not installed (pip install tensorrt, on a machine with an NVIDIA GPU){missing}"
        ) from None
    major = int(trt.__version__.split(".")[0])
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # 10.x builds strongly typed on request; 11 always does (the flag is accepted and ignored there)
    flags = 0 if major >= 11 else 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailableError(f"TensorRT could not parse {onnx}: {errors}")
    config = builder.create_builder_config()
    optimisation = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        optimisation.set_shape(name, *profile(name))
    config.add_optimization_profile(optimisation)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailableError(f"TensorRT failed to build an engine from {onnx}")
    return bytes(serialized)
