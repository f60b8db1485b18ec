"""TensorRT engines from the exported ONNX graph (Python API when tensorrt is installed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prunesearch.errors import BackendUnavailableError


def trtexec_command(onnx: Path, engine: Path, *, batch: int, seq_len: int, fp16: bool = False) -> str:
    shapes = f"input_ids:{batch}x{seq_len},attention_mask:{batch}x{seq_len}"
    precision = " --fp16" if fp16 else ""
    return (
        f"trtexec --onnx={onnx} --saveEngine={engine} --minShapes={shapes} --optShapes={shapes} "
        f"--maxShapes={shapes}{precision} --useCudaGraph --noDataTransfers --warmUp=500 --iterations=200"
    )


def build_engine(onnx: Path, engine: Path, *, conditions: dict | None) -> Path:
    """Serialise an engine for the table's batch and sequence length."""
    c = conditions or {"batch": 1, "seq_len": 128}
    fp16 = c.get("precision", "fp32") == "fp16"
    command = trtexec_command(onnx, engine, batch=c["batch"], seq_len=c["seq_len"], fp16=fp16)
    Path(engine).write_bytes(serialize_network(
        onnx, shape=lambda _: (c["batch"], c["seq_len"]), fp16=fp16, missing=f"; equivalent command: {command}"))
    return Path(engine)


def serialize_network(
    onnx: Path, *, shape: Callable[[str], tuple[int, ...]], fp16: bool = False, missing: str = "",
) -> bytes:
    """An engine (``build_serialized_network``) for one fixed shape of each graph input, ``shape(name)``;
    ``missing`` ends the message raised where TensorRT is not installed.

    TensorRT 10 takes precision builder flags; TensorRT 11 removed them (precision comes
    from the graph: strongly typed networks or Q/DQ nodes), so fp32 graphs build as is.
    """
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendUnavailableError(
            f"TensorRT is not installed (pip install tensorrt, on a machine with an NVIDIA GPU){missing}") from None
    major = int(trt.__version__.split(".")[0])
    if fp16 and major >= 11:
        raise BackendUnavailableError(
            f"TensorRT {trt.__version__} builds fp16 only from an fp16 graph (no FP16 builder flag since 11): convert "
            f"{onnx} with ModelOpt AutoCast (modelopt.onnx.autocast.convert_to_mixed_precision) and build that"
        )
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0 if major >= 11 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailableError(f"TensorRT could not parse {onnx}: {errors}")
    config = builder.create_builder_config()
    if fp16:  # TensorRT 10: weak typing, the builder may pick fp16 kernels
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        profile.set_shape(name, shape(name), shape(name), shape(name))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailableError(f"TensorRT failed to build an engine from {onnx}")
    return bytes(serialized)
