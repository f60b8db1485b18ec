"""GPT-2: pre-LN decoder, biased Conv1D projections, fused q/k/v (``c_attn``).

``c_attn`` outputs ``[q | k | v]``, each ``hidden`` wide, so a head owns the same
``head_dim`` rows in each of the three thirds. Sliced projections become
``nn.Linear`` (same maths). Every block has an output bias, so a layer with
both blocks removed still adds a constant; it is folded into the previous
layer's FFN bias or, before the first layer, into the position embeddings
(``wpe``), and the layer is dropped (see prenorm).
"""

from __future__ import annotations

import torch

from prunesearch.space._adapter import Kind
from prunesearch.space._modules import sliced_linear, unit_columns
from prunesearch.space._prenorm import DecoderAdapter
from prunesearch.space._registry import register_adapter


@register_adapter
class GPT2Adapter(DecoderAdapter):
    family = "gpt2"
    model_types = ("gpt2",)
    layers_name = "h"
    block_names = {"attn": "attn", "ffn": "mlp"}
    output_names = {"attn": "c_proj", "ffn": "c_proj"}
    input_names = {"attn": ("c_attn",), "ffn": ("c_fc",)}
    norm_names = {"attn": "ln_1", "ffn": "ln_2"}
    final_norm_name = "ln_f"

    @property
    def ffn_width(self) -> int:
        return self.config.n_inner or 4 * self.hidden_size

    def constant_sink(self) -> torch.Tensor:
        return self.model.base_model.wpe.weight

    def _slice_inputs(self, layer: int, kind: Kind, keep: torch.Tensor) -> None:
        if kind == "ffn":
            return super()._slice_inputs(layer, kind, keep)
        attn = self.block(layer, "attn")
        cols = unit_columns(keep, self.head_dim)
        rows = torch.cat([cols + part * self.hidden_size for part in range(3)])
        attn.c_attn = sliced_linear(attn.c_attn, rows=rows)
        # forward splits c_attn's output in split_size chunks and infers heads from head_dim
        attn.split_size = len(cols)
        attn.num_heads = len(keep)
