"""Llama-family decoders (Llama, Qwen2, Mistral, SmolLM2): pre-RMSNorm, GQA, gated MLP.

Query heads are kept in whole KV groups: removing a group drops its key and
value heads and the query heads that read them, so ``num_key_value_groups``
(query heads per KV head) stays valid in every layer.
"""

from __future__ import annotations

from prunesearch.space._prenorm import DecoderAdapter
from prunesearch.space._registry import register_adapter


@register_adapter
class LlamaAdapter(DecoderAdapter):
    family = "llama"
    model_types = ("llama", "qwen2", "mistral", "qwen3")
    block_names = {"attn": "self_attn", "ffn": "mlp"}
    output_names = {"attn": "o_proj", "ffn": "down_proj"}
    input_names = {"attn": ("q_proj", "k_proj", "v_proj"), "ffn": ("gate_proj", "up_proj")}
    norm_names = {"attn": "input_layernorm", "ffn": "post_attention_layernorm"}
    final_norm_name = "norm"
