"""Files that run where prunesearch is not installed, copied as they are: the bundle runner a remote device
times graphs with (run_bundle.py: the standard library, numpy and onnxruntime), and the modelling code an
export loads with in transformers (modeling_pruned.py: torch and transformers). Each imports only what it names."""
