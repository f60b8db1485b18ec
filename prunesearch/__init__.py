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
]
