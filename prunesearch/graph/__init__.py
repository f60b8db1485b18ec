"""Graphs of (pruned) models as backends run them: ONNX with its inputs for a workload, TensorRT engines."""

from prunesearch.graph._onnx import check_onnx, export_for, export_onnx, graph_feeds, graph_plan, vocab_of
from prunesearch.graph._tensorrt import build_engine, input_profiles, trtexec_command

__all__ = [
    "build_engine",
    "check_onnx",
    "export_for",
    "export_onnx",
    "graph_feeds",
    "graph_plan",
    "input_profiles",
    "trtexec_command",
    "vocab_of",
]
