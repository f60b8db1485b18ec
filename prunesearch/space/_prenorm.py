"""Pre-LN families (Llama, GPT-2, ViT): each block computes ``x + block(norm(x))``.

A removed block is replaced as a whole module by its constant output
(:class:`BiasOnly`), so its norm and inputs cost nothing. A layer with both
blocks removed only adds that constant to the residual stream, so it is dropped:
the constant is folded into the previous residual write (the previous kept
layer's FFN output bias, or the position embeddings before the first layer),
which is exact. Only where no such place exists (a biased block in front of
a model without additive position embeddings) is the layer kept.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from prunesearch._config import Config
from prunesearch.space._adapter import KINDS, Adapter, Kind
from prunesearch.space._modules import BiasOnly, sliced_linear, unit_columns


class PreNormAdapter(Adapter):
    """Table-driven: subclasses name where each piece lives."""

    drops_empty_layers = True
    #: attribute of the base model holding the blocks
    layers_name: ClassVar[str] = "layers"
    #: kind -> attribute of a layer holding the block
    block_names: ClassVar[dict[str, str]]
    #: kind -> attribute of the block holding its output projection
    output_names: ClassVar[dict[str, str]]
    #: kind -> attributes of the block holding its input projections; for "attn": (q, k, v)
    input_names: ClassVar[dict[str, tuple[str, ...]]]
    #: kind -> attribute of a layer holding the norm in front of the block
    norm_names: ClassVar[dict[str, str]]

    def layers(self) -> nn.ModuleList:
        return getattr(self.model.base_model, self.layers_name)

    def block(self, layer: int, kind: Kind) -> nn.Module:
        return getattr(self.layers()[layer], self.block_names[kind])

    def output_projection(self, layer: int, kind: Kind) -> nn.Module:
        block = self.block(layer, kind)
        return block if isinstance(block, BiasOnly) else getattr(block, self.output_names[kind])

    def input_projections(self, layer: int, kind: Kind) -> list[nn.Module]:
        block = self.block(layer, kind)
        if isinstance(block, BiasOnly):
            return []
        return [getattr(block, name) for name in self.input_names[kind]]

    def block_fixed_params(self, layer: int, kind: Kind) -> int:
        # e.g. Qwen3's per-head q/k norms: they live and die with the block
        block = self.block(layer, kind)
        scaled = {id(p) for m in self.input_projections(layer, kind) for p in m.parameters()}
        scaled |= {id(p) for p in self.output_projection(layer, kind).parameters()}
        return sum(p.numel() for p in block.parameters() if id(p) not in scaled)

    def residual_site(self, layer: int, kind: Kind) -> tuple[nn.Module, int]:
        # the norm in front of each block sees the residual stream it is added to
        return getattr(self.layers()[layer], self.norm_names[kind]), 0

    def _set_output_projection(self, layer: int, kind: Kind, module: nn.Module) -> None:
        if isinstance(module, BiasOnly):
            # the whole block is gone: its module becomes the constant itself
            module.returns_tuple = kind == "attn"
            setattr(self.layers()[layer], self.block_names[kind], module)
        else:
            setattr(self.block(layer, kind), self.output_names[kind], module)

    def _slice_inputs(self, layer: int, kind: Kind, keep: torch.Tensor) -> None:
        block = self.block(layer, kind)
        if kind == "ffn":
            for name in self.input_names["ffn"]:
                setattr(block, name, sliced_linear(getattr(block, name), rows=keep))
            return
        q, k, v = self.input_names["attn"]
        groups = keep[:: self.heads_per_group].div(self.heads_per_group, rounding_mode="floor")
        kv_rows = unit_columns(groups, self.head_dim)
        setattr(block, q, sliced_linear(getattr(block, q), rows=unit_columns(keep, self.head_dim)))
        setattr(block, k, sliced_linear(getattr(block, k), rows=kv_rows))
        setattr(block, v, sliced_linear(getattr(block, v), rows=kv_rows))

    def _remove_inputs(self, layer: int, kind: Kind) -> None:
        """Nothing: _set_output_projection replaces the whole block module."""

    # -- empty layers -------------------------------------------------------------

    def constant_sink(self) -> torch.Tensor | None:
        """A parameter added to every token before the first layer (position embeddings),
        where a dropped first layer's constant can go; None if the family has none."""
        return None

    def _has_bias(self, layer: int, kind: Kind) -> bool:
        return self.output_projection(layer, kind).bias is not None

    def _drop_plan(self, empty: list[bool]) -> list[bool]:
        """Which layers to drop. A function of structure alone (never of weight values),
        so that finalize on a freshly built model (io.load) and param_count agree."""
        plan, last_kept = [], None
        for i, is_empty in enumerate(empty):
            adds_constant = any(self._has_bias(i, kind) for kind in KINDS)
            if last_kept is None:
                foldable = self.constant_sink() is not None
            else:
                foldable = self._has_bias(last_kept, "ffn")
            drop = is_empty and (not adds_constant or foldable)
            plan.append(drop)
            if not drop:
                last_kept = i
        return plan

    def dropped_layers(self, config: Config) -> list[bool]:
        return self._drop_plan([l.heads == 0 and l.ffn == 0 for l in config.layers])

    def _is_removed(self, layer: int, kind: Kind) -> bool:
        return isinstance(self.block(layer, kind), BiasOnly)

    def finalize(self) -> None:
        layers = self.layers()
        empty = [all(self._is_removed(i, kind) for kind in KINDS) for i in range(len(layers))]
        drop = self._drop_plan(empty)
        last_kept = None
        with torch.no_grad():
            for i, dropped in enumerate(drop):
                if not dropped:
                    last_kept = i
                    continue
                for kind in KINDS:
                    bias = self.output_projection(i, kind).bias
                    if bias is None:
                        continue
                    if last_kept is None:
                        self.constant_sink().add_(bias)  # broadcasts over positions
                    else:
                        self.output_projection(last_kept, "ffn").bias.add_(bias)
        if any(drop):
            layer_types = getattr(self.config, "layer_types", None)
            if layer_types is not None:
                self.config.layer_types = [t for t, d in zip(layer_types, drop) if not d]
            kept = nn.ModuleList(m for m, d in zip(layers, drop) if not d)
            setattr(self.model.base_model, self.layers_name, kept)
            self.config.num_hidden_layers = len(kept)


class DecoderAdapter(PreNormAdapter):
    """Pre-LN decoders: after dropping layers, KV-cache slots are renumbered."""

    @property
    def is_decoder(self) -> bool:
        return True

    def finalize(self) -> None:
        super().finalize()
        # cache slots are indexed by layer_idx: number the remaining attentions 0..n-1,
        # so slot 0 (whose length sets the positions of new tokens) is always written
        idx = 0
        for block in self.layers():
            attn = getattr(block, self.block_names["attn"])
            if not isinstance(attn, BiasOnly):
                attn.layer_idx = idx
                idx += 1
