"""prunesearch: hardware-aware search for structured pruning of transformer models."""

from prunesearch._config import Config, LayerConfig
from prunesearch._io import load, save
from prunesearch._models import LoadedModel, load_model
from prunesearch._reporter import QUIET, Reporter
from prunesearch.errors import (
    BackendUnavailableError,
    ConfigError,
    InfeasibleTargetError,
    ModelNotFoundError,
    PruneSearchError,
    SpecError,
    TableError,
)
from prunesearch.prune import UnitChoice, arch_of, masked, prune
from prunesearch.space import Adapter, LayerSpace, Space, adapter_for

__version__ = "0.1.0"

# The rest of the public API loads on first use (PEP 562), so `import prunesearch` and the
# CLI's --help do not pay for optuna, pymoo and onnxruntime.
_LAZY = {
    "LevelDatabase": "prunesearch.prune",
    "load_calibration": "prunesearch.prune",
    "LatencyTable": "prunesearch.oracle",
    "Predictor": "prunesearch.oracle",
    "ensure_table": "prunesearch.oracle",
    "profile_table": "prunesearch.oracle",
    "DistillationFitness": "prunesearch.search",
    "Oracle": "prunesearch.oracle",
    "Measurement": "prunesearch.oracle",
    "MeasuredConfig": "prunesearch.oracle",
    "Conditions": "prunesearch.oracle",
    "Budget": "prunesearch.search",
    "MeasurementLoop": "prunesearch.search",
    "EvolutionOptions": "prunesearch.search",
    "NSGA2Options": "prunesearch.search",
    "PolicyGradientOptions": "prunesearch.search",
    "RandomOptions": "prunesearch.search",
    "RunStore": "prunesearch.search",
    "SearchProblem": "prunesearch.search",
    "SupernetOptions": "prunesearch.search",
    "load_trials": "prunesearch.search",
    "run_search": "prunesearch.search",
    "pareto_mask": "prunesearch._pareto",
    "SearchSpec": "prunesearch._spec",
    "load_spec": "prunesearch._spec",
    "parse_spec": "prunesearch._spec",
    "run_spec": "prunesearch._pipeline",
    "build_database": "prunesearch._pipeline",
    "calibration_for": "prunesearch._pipeline",
    "build_report": "prunesearch.report",
    "Workload": "prunesearch._workload",
    "Objective": "prunesearch._objectives",
    "Constraint": "prunesearch._objectives",
    "register_objective": "prunesearch._objectives",
    "register_algorithm": "prunesearch.search",
    "register_profiler": "prunesearch.oracle.profilers",
    "Run": "prunesearch._run",
    "PreparedSearch": "prunesearch._pipeline",
    "prepare": "prunesearch._pipeline",
    "RecoveryOptions": "prunesearch.prune",
    "recover": "prunesearch.prune",
    "export_from_run": "prunesearch.export",
    "export_config": "prunesearch.export",
    "verify_export": "prunesearch.export",
    "register_adapter": "prunesearch.space",
    "Registry": "prunesearch._registry",
    "Metrics": "prunesearch._objectives",
    "SentencePairs": "prunesearch._quality",
    "HeldOut": "prunesearch._quality",
    "sts_spearman": "prunesearch._quality",
    "perplexity": "prunesearch._quality",
    "embedding_cosine": "prunesearch._quality",
    "embeddings": "prunesearch._quality",
    "spearman": "prunesearch._quality",
    "mean_pool": "prunesearch._pooling",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'prunesearch' has no attribute {name!r}")


__all__ = [
    "Adapter",
    "BackendUnavailableError",
    "Config",
    "ConfigError",
    "InfeasibleTargetError",
    "LayerConfig",
    "LayerSpace",
    "LoadedModel",
    "ModelNotFoundError",
    "PruneSearchError",
    "QUIET",
    "Reporter",
    "SpecError",
    "Space",
    "TableError",
    "UnitChoice",
    "adapter_for",
    "arch_of",
    "load",
    "load_model",
    "masked",
    "prune",
    "save",
    *_LAZY,
]
