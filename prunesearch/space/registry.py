"""Pick the adapter for a model by its Hugging Face ``model_type``."""

from __future__ import annotations

from torch import nn

from prunesearch.errors import ModelNotFoundError
from prunesearch.space.adapter import Adapter
from prunesearch.space.bert import BertAdapter
from prunesearch.space.gpt2 import GPT2Adapter
from prunesearch.space.llama import LlamaAdapter
from prunesearch.space.vit import ViTAdapter

ADAPTERS: list[type[Adapter]] = [BertAdapter, GPT2Adapter, LlamaAdapter, ViTAdapter]


def register_adapter(cls: type[Adapter]) -> type[Adapter]:
    """Add an adapter for more model types (usable as a class decorator)."""
    ADAPTERS.append(cls)
    return cls


def adapter_for(model: nn.Module) -> Adapter:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    for cls in ADAPTERS:
        if model_type in cls.model_types:
            return cls(model)
    supported = sorted(t for cls in ADAPTERS for t in cls.model_types)
    raise ModelNotFoundError(
        f"no pruning adapter for model_type {model_type!r}; supported: {', '.join(supported)}"
    )
