"""The search space: which kept sizes each layer allows, and the integer genome.

A genome is an integer vector of length ``2 * n_layers``: for layer ``i``,
``genome[2*i]`` is the index into that layer's allowed head counts and
``genome[2*i + 1]`` the index into its allowed FFN widths. Level 0 removes the
block; the top level keeps it whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prunesearch._config import Config, LayerConfig
from prunesearch.errors import ConfigError


@dataclass(frozen=True)
class LayerSpace:
    """Allowed kept sizes of one layer, ascending, each starting at 0."""

    heads: tuple[int, ...]
    ffn: tuple[int, ...]

    @property
    def max_heads(self) -> int:
        return self.heads[-1]

    @property
    def max_ffn(self) -> int:
        return self.ffn[-1]


def width_grid(total: int, step: int) -> tuple[int, ...]:
    """0, step, 2*step, ... up to ``total`` (``total`` itself always included)."""
    if step <= 0:
        raise ConfigError(f"granularity must be positive, got {step}")
    grid = list(range(0, total, step))
    return tuple(grid + [total])


@dataclass(frozen=True)
class Space:
    """Per-layer allowed sizes plus the shape facts the oracle and slicer need."""

    layers: tuple[LayerSpace, ...]
    head_dim: int
    hidden_size: int
    heads_per_group: int = 1  # query heads per KV group: GQA prunes whole groups

    @classmethod
    def uniform(
        cls,
        *,
        n_layers: int,
        n_heads: int,
        ffn_width: int,
        head_dim: int,
        hidden_size: int,
        heads_per_group: int = 1,
        ffn_step: int = 128,
    ) -> Space:
        layer = LayerSpace(
            heads=width_grid(n_heads, heads_per_group),
            ffn=width_grid(ffn_width, ffn_step),
        )
        return cls(
            layers=(layer,) * n_layers,
            head_dim=head_dim,
            hidden_size=hidden_size,
            heads_per_group=heads_per_group,
        )

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def dense(self) -> Config:
        return Config(layers=tuple(LayerConfig(heads=l.max_heads, ffn=l.max_ffn) for l in self.layers))

    def uniform_config(self, *, heads: int, ffn: int) -> Config:
        config = Config.uniform(self.n_layers, heads=heads, ffn=ffn)
        self.validate(config)
        return config

    def validate(self, config: Config) -> None:
        """Raise ConfigError naming the first layer and value that do not fit."""
        if len(config.layers) != self.n_layers:
            raise ConfigError(f"config has {len(config.layers)} layers, the model has {self.n_layers}")
        for i, (layer, allowed) in enumerate(zip(config.layers, self.layers)):
            if layer.heads not in allowed.heads:
                why = ""
                if layer.heads > allowed.max_heads:
                    why = f" (the model has {allowed.max_heads})"
                elif self.heads_per_group > 1 and layer.heads % self.heads_per_group:
                    why = f" (GQA: whole KV groups of {self.heads_per_group} query heads)"
                raise ConfigError(f"layer {i}: heads={layer.heads} is not allowed{why}; allowed: {_fmt(allowed.heads)}")
            if layer.ffn not in allowed.ffn:
                why = f" (the model has {allowed.max_ffn})" if layer.ffn > allowed.max_ffn else ""
                raise ConfigError(f"layer {i}: ffn={layer.ffn} is off the grid{why}; allowed: {_fmt(allowed.ffn)}")

    # -- genome -----------------------------------------------------------------

    @property
    def genome_upper(self) -> np.ndarray:
        """Largest level index of each genome entry (inclusive)."""
        return np.array([n for l in self.layers for n in (len(l.heads) - 1, len(l.ffn) - 1)], dtype=np.int64)

    def to_genome(self, config: Config) -> np.ndarray:
        self.validate(config)
        return np.array(
            [
                idx
                for layer, allowed in zip(config.layers, self.layers)
                for idx in (allowed.heads.index(layer.heads), allowed.ffn.index(layer.ffn))
            ],
            dtype=np.int64,
        )

    def from_genome(self, genome: np.ndarray) -> Config:
        genome = np.asarray(genome, dtype=np.int64)
        if genome.shape != (2 * self.n_layers,):
            raise ConfigError(f"genome must have {2 * self.n_layers} entries, got {genome.shape}")
        if (genome < 0).any() or (genome > self.genome_upper).any():
            raise ConfigError(f"genome {genome.tolist()} has a level outside the grid")
        return Config(
            layers=tuple(
                LayerConfig(heads=allowed.heads[genome[2 * i]], ffn=allowed.ffn[genome[2 * i + 1]])
                for i, allowed in enumerate(self.layers)
            )
        )


def _fmt(values: tuple[int, ...]) -> str:
    if len(values) <= 8:
        return ", ".join(map(str, values))
    step = values[1] - values[0]
    return f"0, {step}, ..., {values[-1]} (steps of {step})"
