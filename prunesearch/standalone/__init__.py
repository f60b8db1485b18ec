"""Files that run where prunesearch is not installed, copied as they are: the bundle runner a remote device
times graphs with. Each imports only the standard library and what it names (numpy, onnxruntime)."""
