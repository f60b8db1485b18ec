"""What can be pruned in a model, and how to slice it physically."""

from prunesearch.space.adapter import KINDS, Adapter, Kind
from prunesearch.space.registry import ADAPTERS, adapter_for, register_adapter
from prunesearch.space.space import LayerSpace, Space, width_grid

__all__ = [
    "ADAPTERS",
    "KINDS",
    "Adapter",
    "Kind",
    "LayerSpace",
    "Space",
    "adapter_for",
    "register_adapter",
    "width_grid",
]
