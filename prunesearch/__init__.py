"""prunesearch: hardware-aware search for structured pruning of transformer models."""

from prunesearch.config import Config, LayerConfig
from prunesearch.errors import (
    BackendUnavailableError,
    ConfigError,
    InfeasibleTargetError,
    ModelNotFoundError,
    PruneSearchError,
    SpecError,
    TableError,
)
from prunesearch.io import load, save
from prunesearch.models import LoadedModel, load_model
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
    "DistillationFitness": "prunesearch.search.fitness",
    "EvolutionOptions": "prunesearch.search",
    "NSGA2Options": "prunesearch.search",
    "PolicyGradientOptions": "prunesearch.search",
    "RandomOptions": "prunesearch.search",
    "RunStore": "prunesearch.search",
    "SearchProblem": "prunesearch.search",
    "SupernetOptions": "prunesearch.search",
    "load_trials": "prunesearch.search",
    "run_search": "prunesearch.search",
    "pareto_mask": "prunesearch.pareto",
    "SearchSpec": "prunesearch.spec",
    "load_spec": "prunesearch.spec",
    "run_spec": "prunesearch.pipeline",
    "build_report": "prunesearch.report",
    "Workload": "prunesearch.workload",
    "Objective": "prunesearch.objectives",
    "Constraint": "prunesearch.objectives",
    "register_objective": "prunesearch.objectives",
    "register_algorithm": "prunesearch.search.registry",
    "register_profiler": "prunesearch.oracle.profilers",
    "Run": "prunesearch.run",
    "PreparedSearch": "prunesearch.pipeline",
    "prepare": "prunesearch.pipeline",
    "RecoveryOptions": "prunesearch.prune.recover",
    "recover": "prunesearch.prune.recover",
    "export_from_run": "prunesearch.export.from_run",
    "export_config": "prunesearch.export.from_config",
    "verify_export": "prunesearch.export.verify",
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
