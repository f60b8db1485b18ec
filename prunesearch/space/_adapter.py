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

from prunesearch._config import Config
from prunesearch.errors import ConfigError
from prunesearch.space._modules import BiasOnly, linear_weight, sliced_linear, unit_columns
from prunesearch.space._space import Space

Kind = Literal["attn", "ffn"]
KINDS: tuple[Kind, Kind] = ("attn", "ffn")


class Adapter(ABC):
    """One architecture family. Subclasses fill in where each piece lives."""

    family: ClassVar[str]
    model_types: ClassVar[tuple[str, ...]]
    #: post-LN families keep a layer's norms when both blocks are removed;
    #: pre-LN families drop the whole layer (see prenorm.PreNormAdapter).
    drops_empty_layers: ClassVar[bool] = False
    #: what one inference takes: token ids, or image pixels (ViT)
    inputs: ClassVar[Literal["tokens", "pixels"]] = "tokens"
    #: attribute of the base model normalising the last layer's output (None: it is output as is)
    final_norm_name: ClassVar[str | None] = None

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.config = model.config
        self._sizes: dict = {}  # param_count coefficients of the dense model, filled on first use

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
    def input_projections(self, layer: int, kind: Kind) -> list[nn.Module]:
        """The projections whose output rows belong to the units (empty once removed)."""

    @abstractmethod
    def residual_site(self, layer: int, kind: Kind) -> tuple[nn.Module, int]:
        """(module, positional arg index) whose forward input is the residual stream
        that the block's output is added to."""

    @abstractmethod
    def _slice_inputs(self, layer: int, kind: Kind, keep: torch.Tensor) -> None:
        """Keep only ``keep`` units in the block's input projections."""

    @abstractmethod
    def _set_output_projection(self, layer: int, kind: Kind, module: nn.Module) -> None: ...

    @abstractmethod
    def _remove_inputs(self, layer: int, kind: Kind) -> None:
        """Replace the block's input side by a module that computes nothing."""

    def final_norm(self) -> nn.Module:
        """What the base model applies to the last layer's output (a pre-LN family's final norm)."""
        name = self.final_norm_name
        return nn.Identity() if name is None else getattr(self.model.base_model, name)

    def finalize(self) -> None:  # noqa: B027  (a hook: most families have nothing to clean up)
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
                raise ConfigError(f"GQA: query heads must be kept in whole KV groups of {self.heads_per_group}")

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
        proj = self.output_projection(layer, kind)
        if len(keep) == self.n_units(kind):
            # nothing to slice: overwrite in place so the module type (e.g. GPT-2's
            # Conv1D) stays what io.load rebuilds from the arch record
            self._overwrite(proj, weight=weight, bias=bias)
            return
        self.check_units(kind, keep)
        if len(keep) == 0:
            # a projection without bias stays without one (sliced_linear does the same)
            out_bias = None
            if proj.bias is not None:
                out_bias = (bias if bias is not None else proj.bias.detach()).to(proj.bias.device, proj.bias.dtype)
            self._remove_inputs(layer, kind)
            self._set_output_projection(layer, kind, BiasOnly(out_bias, size=self.hidden_size))
            return
        self._slice_inputs(layer, kind, keep)
        cols = self.columns(kind, keep)
        self._set_output_projection(layer, kind, sliced_linear(proj, cols=cols, weight=weight, bias=bias))

    @staticmethod
    def _overwrite(proj: nn.Module, *, weight: torch.Tensor | None, bias: torch.Tensor | None) -> None:
        # new parameters, never writes into the old ones: a layer copy that shares the dense
        # model's tensors (prune/_layerwise.py) must leave the dense model as it was
        if weight is not None:
            stored = weight.t() if type(proj).__name__ == "Conv1D" else weight  # Conv1D stores (in, out)
            proj.weight = nn.Parameter(stored.to(proj.weight.device, proj.weight.dtype).contiguous())
        if bias is not None and proj.bias is not None:
            proj.bias = nn.Parameter(bias.to(proj.bias.device, proj.bias.dtype).clone())

    # -- analytic size ------------------------------------------------------------------

    def block_params(self, layer: int, kind: Kind, size: int) -> int:
        """Parameters of one block of the *dense* model when ``size`` units are kept."""
        key = (layer, kind)
        if key not in self._sizes:
            proj = self.output_projection(layer, kind)
            bias = proj.bias.numel() if proj.bias is not None else 0
            inputs = sum(p.numel() for m in self.input_projections(layer, kind) for p in m.parameters())
            per_unit_out = self.hidden_size * self.unit_width(kind)
            self._sizes[key] = (bias, inputs, per_unit_out, self.block_fixed_params(layer, kind))
        bias, inputs, per_unit_out, fixed = self._sizes[key]
        if size == 0:
            return bias  # BiasOnly keeps the bias, nothing else
        n = self.n_units(kind)
        # input rows scale with kept units (GQA: sizes are whole groups, so this divides)
        assert (inputs * size) % n == 0, "unit count off the group grid"
        return inputs * size // n + per_unit_out * size + bias + fixed

    def block_fixed_params(self, layer: int, kind: Kind) -> int:
        """Parameters that do not scale with units but go when the block is removed."""
        return 0

    def dropped_layers(self, config: Config) -> list[bool]:
        """Which layers the pruned model no longer has (none for post-LN families)."""
        return [False] * self.n_layers

    def param_count(self, config: Config) -> int:
        """Exact ``sum(p.numel())`` of ``prune(model, config)``, from shapes alone
        (tied embeddings counted once). Call it on the adapter of the dense model."""
        self._check_sizes(config)
        if "layers" not in self._sizes:
            self._sizes["total"] = sum(p.numel() for p in self.model.parameters())  # tied: once
            self._sizes["layers"] = [sum(p.numel() for p in m.parameters()) for m in self.layers()]
        total = self._sizes["total"]
        for i, (layer, dropped) in enumerate(zip(config.layers, self.dropped_layers(config))):
            if dropped:
                total -= self._sizes["layers"][i]
                continue
            for kind, size in zip(KINDS, (layer.heads, layer.ffn)):
                total += self.block_params(i, kind, size) - self.block_params(i, kind, self.n_units(kind))
        return total

    def _check_sizes(self, config: Config) -> None:
        if len(config.layers) != self.n_layers:
            raise ConfigError(f"config has {len(config.layers)} layers, the model has {self.n_layers}")
        for i, layer in enumerate(config.layers):
            if layer.heads > self.n_heads or layer.heads % self.heads_per_group:
                raise ConfigError(
                    f"layer {i}: heads={layer.heads} is not allowed; allowed: multiples of "
                    f"{self.heads_per_group} up to {self.n_heads}"
                )
            if layer.ffn > self.ffn_width:
                raise ConfigError(f"layer {i}: ffn={layer.ffn} exceeds the FFN width {self.ffn_width}")

    def mask(self, layer: int, kind: Kind, keep: torch.Tensor) -> None:
        """Zero the output-projection columns of every unit not in ``keep`` (no slicing).

        The masked dense model is the reference a sliced model must equal.
        """
        drop = torch.ones(self.n_units(kind), dtype=torch.bool)
        drop[torch.as_tensor(keep, dtype=torch.long)] = False
        cols = self.columns(kind, drop.nonzero().flatten())
        with torch.no_grad():
            self.output_weight(layer, kind)[:, cols] = 0.0
