"""Backends that time an ONNX graph on a device other than this CPU's ONNX Runtime."""
