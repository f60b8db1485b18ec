"""What can be pruned in a model, and how to slice it physically."""

from prunesearch.space._adapter import KINDS, Adapter, Kind
from prunesearch.space._bert import BertAdapter
from prunesearch.space._gpt2 import GPT2Adapter
from prunesearch.space._llama import LlamaAdapter
from prunesearch.space._prenorm import DecoderAdapter, PreNormAdapter
from prunesearch.space._registry import ADAPTERS, adapter_for, register_adapter
from prunesearch.space._space import LayerSpace, Space, width_grid
from prunesearch.space._vit import ViTAdapter

__all__ = [
    "ADAPTERS",
    "KINDS",
    "Adapter",
    "BertAdapter",
    "DecoderAdapter",
    "GPT2Adapter",
    "Kind",
    "LayerSpace",
    "LlamaAdapter",
    "PreNormAdapter",
    "Space",
    "ViTAdapter",
    "adapter_for",
    "register_adapter",
    "width_grid",
]
