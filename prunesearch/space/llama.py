"""Llama-family decoders (Llama, Qwen2, Mistral, SmolLM2): pre-RMSNorm, GQA, gated MLP.

Query heads are kept in whole KV groups: removing a group drops its key and
value heads and the query heads that read them, so ``num_key_value_groups``
(query heads per KV head) stays valid in every layer.
"""

from __future__ import annotations

import torch
from torch import nn

from prunesearch.space.adapter import Adapter, Kind
from prunesearch.space.modules import BiasOnly, sliced_linear, unit_columns


class DecoderAdapter(Adapter):
    """Shared by pre-LN decoders: empty layers are dropped and caches renumbered."""

    drops_empty_layers = True

    @property
    def is_decoder(self) -> bool:
        return True

    def finalize(self) -> None:
        layers = self.layers()
        kept = [m for m in layers if not self._is_empty(m)]
        if len(kept) != len(layers):
            layer_types = getattr(self.config, "layer_types", None)
            if layer_types is not None:
                self.config.layer_types = [
                    t for t, m in zip(layer_types, layers) if not self._is_empty(m)
                ]
            self._set_layers(nn.ModuleList(kept))
            self.config.num_hidden_layers = len(kept)
        # KV cache slots are indexed by layer_idx: number the remaining attentions 0..n-1
        idx = 0
        for block in self.layers():
            attn = self._attention(block)
            if hasattr(attn, "layer_idx"):
                attn.layer_idx = idx
                idx += 1

    def _is_empty(self, block: nn.Module) -> bool:
        return all(
            isinstance(self._block_output(block, kind), BiasOnly)
            and not self._block_output(block, kind).bias.any()
            for kind in ("attn", "ffn")
        )

    def _attention(self, block: nn.Module) -> nn.Module:
        raise NotImplementedError

    def _block_output(self, block: nn.Module, kind: Kind) -> nn.Module:
        raise NotImplementedError

    def _set_layers(self, layers: nn.ModuleList) -> None:
        raise NotImplementedError


class LlamaAdapter(DecoderAdapter):
    family = "llama"
    model_types = ("llama", "qwen2", "mistral", "qwen3")

    def layers(self) -> nn.ModuleList:
        return self.model.base_model.layers

    def _set_layers(self, layers: nn.ModuleList) -> None:
        self.model.base_model.layers = layers

    def _attention(self, block: nn.Module) -> nn.Module:
        return block.self_attn

    def _block_output(self, block: nn.Module, kind: Kind) -> nn.Module:
        return block.self_attn if kind == "attn" else block.mlp

    def output_projection(self, layer: int, kind: Kind) -> nn.Module:
        block = self.layers()[layer]
        return block.self_attn.o_proj if kind == "attn" else block.mlp.down_proj

    def residual_site(self, layer: int, kind: Kind) -> tuple[nn.Module, int]:
        # the norm in front of each block sees the residual stream it is added to
        block = self.layers()[layer]
        return (block.input_layernorm if kind == "attn" else block.post_attention_layernorm), 0

    def _set_output_projection(self, layer: int, kind: Kind, module: nn.Module) -> None:
        block = self.layers()[layer]
        if isinstance(module, BiasOnly):
            # the whole block is gone: its module becomes the constant itself
            module.returns_tuple = kind == "attn"
            if kind == "attn":
                block.self_attn = module
            else:
                block.mlp = module
        elif kind == "attn":
            block.self_attn.o_proj = module
        else:
            block.mlp.down_proj = module

    def _slice_inputs(self, layer: int, kind: Kind, keep: torch.Tensor) -> None:
        block = self.layers()[layer]
        if kind == "attn":
            attn = block.self_attn
            groups = keep[:: self.heads_per_group].div(self.heads_per_group, rounding_mode="floor")
            attn.q_proj = sliced_linear(attn.q_proj, rows=unit_columns(keep, self.head_dim))
            kv_rows = unit_columns(groups, self.head_dim)
            attn.k_proj = sliced_linear(attn.k_proj, rows=kv_rows)
            attn.v_proj = sliced_linear(attn.v_proj, rows=kv_rows)
        else:
            mlp = block.mlp
            mlp.gate_proj = sliced_linear(mlp.gate_proj, rows=keep)
            mlp.up_proj = sliced_linear(mlp.up_proj, rows=keep)

    def _remove_inputs(self, layer: int, kind: Kind) -> None:
        # _set_output_projection replaces the whole block module
        pass
