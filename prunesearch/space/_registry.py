"""Pick the adapter for a model by its Hugging Face ``model_type``.

Each family module registers its adapter with ``register_adapter``; the registry imports every module of this
package on first use, so a new family is one new module."""

from __future__ import annotations

from torch import nn

from prunesearch._registry import Registry
from prunesearch.errors import ModelNotFoundError
from prunesearch.space._adapter import Adapter

ADAPTERS: Registry[type[Adapter]] = Registry("model family", package="prunesearch.space", error=ModelNotFoundError)


def register_adapter(cls: type[Adapter]) -> type[Adapter]:
    """Add an adapter for more model types (a class decorator)."""
    return ADAPTERS.register(cls.family, cls)


def adapter_for(model: nn.Module) -> Adapter:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    for cls in ADAPTERS.values():
        if model_type in cls.model_types:
            return cls(model)
    supported = sorted(t for cls in ADAPTERS.values() for t in cls.model_types)
    raise ModelNotFoundError(f"no pruning adapter for model_type {model_type!r}; supported: {', '.join(supported)}")
