"""What can be pruned in a model, and how to slice it physically."""

from prunesearch.space.adapter import KINDS, Adapter, Kind
from prunesearch.space.bert import BertAdapter
from prunesearch.space.gpt2 import GPT2Adapter
from prunesearch.space.llama import LlamaAdapter
from prunesearch.space.prenorm import DecoderAdapter, PreNormAdapter
from prunesearch.space.registry import ADAPTERS, adapter_for, register_adapter
from prunesearch.space.space import LayerSpace, Space, width_grid
from prunesearch.space.vit import ViTAdapter

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
