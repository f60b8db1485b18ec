"""ViT encoders: pre-LN, q/k/v/o attention, fc1/fc2 MLP, residual added in ViTLayer.

Same layout as the Llama family (transformers 5 names), minus GQA and the gate;
a dropped first layer's constant goes into ``embeddings.position_embeddings``.
"""

from __future__ import annotations

import torch

from prunesearch.space._prenorm import PreNormAdapter
from prunesearch.space._registry import register_adapter


@register_adapter
class ViTAdapter(PreNormAdapter):
    family = "vit"
    model_types = ("vit",)
    inputs = "pixels"
    block_names = {"attn": "attention", "ffn": "mlp"}
    output_names = {"attn": "o_proj", "ffn": "fc2"}
    input_names = {"attn": ("q_proj", "k_proj", "v_proj"), "ffn": ("fc1",)}
    norm_names = {"attn": "layernorm_before", "ffn": "layernorm_after"}
    final_norm_name = "layernorm"

    def constant_sink(self) -> torch.Tensor:
        return self.model.base_model.embeddings.position_embeddings
