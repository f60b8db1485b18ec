"""BERT-style encoders (BERT, RoBERTa, MiniLM, ...): post-LN, MHA, biased projections."""

from __future__ import annotations

import torch
from torch import nn

from prunesearch.space._adapter import Adapter, Kind
from prunesearch.space._modules import Passthrough, sliced_linear, unit_columns
from prunesearch.space._registry import register_adapter


@register_adapter
class BertAdapter(Adapter):
    family = "bert"
    model_types = ("bert", "roberta", "xlm-roberta", "camembert", "electra")

    def layers(self) -> nn.ModuleList:
        return self.model.base_model.encoder.layer

    def output_projection(self, layer: int, kind: Kind) -> nn.Module:
        block = self.layers()[layer]
        return block.attention.output.dense if kind == "attn" else block.output.dense

    def input_projections(self, layer: int, kind: Kind) -> list[nn.Module]:
        block = self.layers()[layer]
        if kind == "ffn":
            return [] if isinstance(block.intermediate, Passthrough) else [block.intermediate.dense]
        attn = block.attention.self
        return [] if isinstance(attn, Passthrough) else [attn.query, attn.key, attn.value]

    def residual_site(self, layer: int, kind: Kind) -> tuple[nn.Module, int]:
        # BertSelfOutput / BertOutput get (projected, residual) and add them before LayerNorm
        block = self.layers()[layer]
        return (block.attention.output if kind == "attn" else block.output), 1

    def _set_output_projection(self, layer: int, kind: Kind, module: nn.Module) -> None:
        block = self.layers()[layer]
        if kind == "attn":
            block.attention.output.dense = module
        else:
            block.output.dense = module

    def _slice_inputs(self, layer: int, kind: Kind, keep: torch.Tensor) -> None:
        block = self.layers()[layer]
        if kind == "attn":
            attn = block.attention.self
            rows = unit_columns(keep, self.head_dim)
            attn.query = sliced_linear(attn.query, rows=rows)
            attn.key = sliced_linear(attn.key, rows=rows)
            attn.value = sliced_linear(attn.value, rows=rows)
            attn.num_attention_heads = len(keep)
            attn.all_head_size = len(keep) * self.head_dim
        else:
            block.intermediate.dense = sliced_linear(block.intermediate.dense, rows=keep)

    def _remove_inputs(self, layer: int, kind: Kind) -> None:
        block = self.layers()[layer]
        if kind == "attn":
            block.attention.self = Passthrough(returns_tuple=True)
        else:
            block.intermediate = Passthrough()
