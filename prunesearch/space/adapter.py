"""The adapter contract: what a family must tell and do so the rest is family-free.

Units: ``"attn"`` units are query heads (GQA: removed in whole KV groups),
``"ffn"`` units are intermediate channels. Each unit owns some output rows of
the block's input projections and some input columns of its *output
projection* (attention out / FFN down), which is where masking and
least-squares reconstruction act.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import torch
from torch import nn

from prunesearch.errors import ConfigError
from prunesearch.space.modules import BiasOnly, linear_weight, sliced_linear, unit_columns
from prunesearch.space.space import Space

Kind = Literal["attn", "ffn"]
KINDS: tuple[Kind, Kind] = ("attn", "ffn")


class Adapter(ABC):
    """One architecture family. Subclasses fill in where each piece lives."""

    family: ClassVar[str]
    model_types: ClassVar[tuple[str, ...]]
    #: post-LN families keep a layer's norms when both blocks are removed;
    #: pre-LN decoders drop the whole layer (the residual passes unchanged).
    drops_empty_layers: ClassVar[bool] = False
    #: the sublayer modules return (output, weights) tuples
    attention_returns_tuple: ClassVar[bool] = True

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.config = model.config

    # -- shape facts --------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        return len(self.layers())

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def n_heads(self) -> int:
        return self.config.num_attention_heads

    @property
    def n_kv_heads(self) -> int:
        return getattr(self.config, "num_key_value_heads", None) or self.n_heads

    @property
    def heads_per_group(self) -> int:
        return self.n_heads // self.n_kv_heads

    @property
    def head_dim(self) -> int:
        return getattr(self.config, "head_dim", None) or self.hidden_size // self.n_heads

    @property
    def ffn_width(self) -> int:
        return self.config.intermediate_size

    @property
    def is_decoder(self) -> bool:
        return False

    def space(self, *, ffn_step: int = 128) -> Space:
        if ffn_step > self.ffn_width:
            raise ConfigError(f"ffn_step {ffn_step} exceeds the FFN width {self.ffn_width}")
        return Space.uniform(
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            ffn_width=self.ffn_width,
            head_dim=self.head_dim,
            hidden_size=self.hidden_size,
            heads_per_group=self.heads_per_group,
            ffn_step=ffn_step,
        )

    def n_units(self, kind: Kind) -> int:
        return self.n_heads if kind == "attn" else self.ffn_width

    def unit_width(self, kind: Kind) -> int:
        """Output-projection columns per unit."""
        return self.head_dim if kind == "attn" else 1

    # -- where things live (family-specific) --------------------------------------

    @abstractmethod
    def layers(self) -> nn.ModuleList:
        """The transformer blocks, in order."""

    @abstractmethod
    def output_projection(self, layer: int, kind: Kind) -> nn.Module:
        """The projection that consumes the units (attention out / FFN down)."""

    @abstractmethod
    def residual_site(self, layer: int, kind: Kind) -> tuple[nn.Module, int]:
        """(module, positional arg index) whose forward input is the residual stream
        that the block's output is added to."""

    @abstractmethod
    def _slice_inputs(self, layer: int, kind: Kind, keep: torch.Tensor) -> None:
        """Keep only ``keep`` units in the block's input projections."""

    @abstractmethod
    def _set_output_projection(self, layer: int, kind: Kind, module: nn.Module) -> None:
        ...

    @abstractmethod
    def _remove_inputs(self, layer: int, kind: Kind) -> None:
        """Replace the block's input side by a module that computes nothing."""

    def finalize(self) -> None:
        """Structural clean-up after all layers are sliced (decoders renumber caches)."""

    # -- generic operations ---------------------------------------------------------

    def output_weight(self, layer: int, kind: Kind) -> torch.Tensor:
        """(hidden, units*width) weight of the output projection."""
        return linear_weight(self.output_projection(layer, kind))

    def output_bias(self, layer: int, kind: Kind) -> torch.Tensor | None:
        return self.output_projection(layer, kind).bias

    def columns(self, kind: Kind, units: torch.Tensor) -> torch.Tensor:
        return unit_columns(units, self.unit_width(kind))

    def check_units(self, kind: Kind, keep: torch.Tensor) -> None:
        if kind == "attn" and self.heads_per_group > 1:
            groups = keep.div(self.heads_per_group, rounding_mode="floor")
            g, counts = groups.unique(return_counts=True)
            if (counts != self.heads_per_group).any():
                raise ConfigError(
                    f"GQA: query heads must be kept in whole KV groups of {self.heads_per_group}"
                )

    def apply(
        self,
        layer: int,
        kind: Kind,
        keep: torch.Tensor,
        *,
        weight: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> None:
        """Physically keep units ``keep`` of one block.

        ``weight``/``bias`` are an optional reconstructed output projection for
        exactly those units (shape ``hidden × len(keep)*unit_width``).
        """
        keep = torch.as_tensor(keep, dtype=torch.long).sort().values
        if len(keep) == self.n_units(kind):
            if weight is None and bias is None:
                return
        self.check_units(kind, keep)
        proj = self.output_projection(layer, kind)
        if len(keep) == 0:
            old_bias = proj.bias.detach() if proj.bias is not None else None
            out_bias = bias if bias is not None else old_bias
            if out_bias is None:
                out_bias = torch.zeros(self.hidden_size, dtype=linear_weight(proj).dtype)
            self._remove_inputs(layer, kind)
            self._set_output_projection(layer, kind, BiasOnly(out_bias))
            return
        self._slice_inputs(layer, kind, keep)
        cols = self.columns(kind, keep)
        self._set_output_projection(
            layer, kind, sliced_linear(proj, cols=cols, weight=weight, bias=bias)
        )

    def mask(self, layer: int, kind: Kind, keep: torch.Tensor) -> None:
        """Zero the output-projection columns of every unit not in ``keep`` (no slicing).

        The masked dense model is the reference a sliced model must equal.
        """
        drop = torch.ones(self.n_units(kind), dtype=torch.bool)
        drop[torch.as_tensor(keep, dtype=torch.long)] = False
        cols = self.columns(kind, drop.nonzero().flatten())
        with torch.no_grad():
            self.output_weight(layer, kind)[:, cols] = 0.0
