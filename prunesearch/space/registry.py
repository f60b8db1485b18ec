"""Pick the adapter for a model by its Hugging Face ``model_type``.

Each family module registers its adapter with ``register_adapter``; every module of this package is
imported on first use, so a new family is one new module."""

from __future__ import annotations

import importlib
import pkgutil

from torch import nn

from prunesearch.errors import ModelNotFoundError
from prunesearch.space.adapter import Adapter

ADAPTERS: list[type[Adapter]] = []


def register_adapter(cls: type[Adapter]) -> type[Adapter]:
    """Add an adapter for more model types (a class decorator)."""
    ADAPTERS.append(cls)
    return cls


def load_families() -> list[type[Adapter]]:
    """Every adapter of this package's modules, imported once."""
    import prunesearch.space as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    return ADAPTERS


def adapter_for(model: nn.Module) -> Adapter:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    for cls in load_families():
        if model_type in cls.model_types:
            return cls(model)
    supported = sorted(t for cls in ADAPTERS for t in cls.model_types)
    raise ModelNotFoundError(f"no pruning adapter for model_type {model_type!r}; supported: {', '.join(supported)}")
