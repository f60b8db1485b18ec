"""Graphs of (pruned) models as backends run them: ONNX with its inputs for a workload, TensorRT engines."""

from prunesearch.graph.onnx import check_onnx, export_for, export_onnx, graph_feeds, vocab_of
from prunesearch.graph.tensorrt import build_engine, trtexec_command

__all__ = ["build_engine", "check_onnx", "export_for", "export_onnx", "graph_feeds", "trtexec_command", "vocab_of"]
