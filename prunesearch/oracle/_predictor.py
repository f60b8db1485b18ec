"""The additive predictor: base + sum over layers of attn[heads] + ffn[width], vectorised over genomes.

Costs are fractions of the dense model's time (table.py), so a prediction is first a ratio (and
a speed-up, its inverse) that no drift of the machine moves; milliseconds are that ratio times
``reference_ms``, the dense model measured now (default: as measured with the table).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from prunesearch._config import Config
from prunesearch.errors import TableError
from prunesearch.oracle._table import ENERGY, LatencyTable
from prunesearch.space import LayerSpace, Space


class Predictor:
    def __init__(
        self,
        table: LatencyTable,
        space: Space,
        *,
        calibrated: bool = True,
        reference_ms: float | None = None,
    ) -> None:
        self.table = table
        self.space = space
        cal = table.meta.calibration if calibrated else None
        self.scale = cal.scale if cal else 1.0
        self.offset = cal.offset if cal else 0.0
        #: the dense model's milliseconds that ratios are scaled by
        self.reference_ms = float(reference_ms if reference_ms is not None else table.meta.dense_ms)
        self._rows = np.arange(2 * space.n_layers)
        try:
            self._cost = self._levels(table.cost)
        except TableError as exc:
            raise TableError(f"{exc} (the table's grid does not cover this search space)") from None
        self._energy = None
        if ENERGY in table.rows:  # every cost row was found above, so every energy lookup is too
            self._energy = self._levels(lambda kind, size: table.cost(kind, size, ENERGY))

    def _levels(self, cost: Callable[[str, int], float]) -> tuple[float, np.ndarray]:
        """``cost`` of the base and, per genome entry, of each level (ragged grids padded with +inf)."""
        width = int(self.space.genome_upper.max()) + 1
        costs = np.full((2 * self.space.n_layers, width), np.inf)
        for i, layer in enumerate(self.space.layers):
            for j, (kind, grid) in enumerate((("attn", layer.heads), ("ffn", layer.ffn))):
                costs[2 * i + j, : len(grid)] = [cost(kind, s) for s in grid]
        return cost("base", 0), costs

    def _sum(self, levels: tuple[float, np.ndarray], genomes: np.ndarray) -> np.ndarray:
        base, costs = levels
        return base + costs[self._rows, np.atleast_2d(np.asarray(genomes, dtype=np.int64))].sum(axis=1)

    def raw_ratio(self, genomes: np.ndarray) -> np.ndarray:
        """The uncalibrated additive sum, as a fraction of the dense model's time."""
        return self._sum(self._cost, genomes)

    def ratio(self, genomes: np.ndarray) -> np.ndarray:
        """Predicted time as a fraction of the dense model's."""
        return self.scale * self.raw_ratio(genomes) + self.offset

    def speedup(self, genomes: np.ndarray) -> np.ndarray:
        return 1.0 / self.ratio(genomes)

    def latency_ms(self, genomes: np.ndarray) -> np.ndarray:
        return self.ratio(genomes) * self.reference_ms

    def energy_mj(self, genomes: np.ndarray) -> np.ndarray | None:
        """Energy per inference, summed like latency from the table's ``energy_mj`` rows (uncalibrated: the
        table's calibration fits latency only); None for a table without them."""
        return None if self._energy is None else self._sum(self._energy, genomes)

    def config_ratio(self, config: Config) -> float:
        return float(self.ratio(self.space.to_genome(config))[0])

    def config_latency_ms(self, config: Config) -> float:
        return self.config_ratio(config) * self.reference_ms

    @property
    def dense_ms(self) -> float:
        """The dense model's time that speed-up targets divide: the reference, measured."""
        return self.reference_ms


def table_space(table: LatencyTable, *, n_layers: int | None = None) -> Space:
    """The space a table's rows price: ``n_layers`` layers (default ``table_layers``) of one shape, as every
    table assumes, at the levels it measured; heads in steps of their greatest common divisor (GQA: whole KV
    groups)."""
    n_layers = table_layers(table) if n_layers is None else n_layers
    rows = table.rows

    def levels(kind: str) -> tuple[int, ...]:
        return tuple(sorted({int(s) for s in rows[rows.kind == kind]["size"]} | {0}))

    heads = levels("attn")
    layer = LayerSpace(heads=heads, ffn=levels("ffn"))
    return Space(layers=(layer,) * n_layers, head_dim=0, hidden_size=0, heads_per_group=math.gcd(*heads) or 1)


def table_layers(table: LatencyTable) -> int:
    """The layers of the model a table was measured for: recorded in the table, or (older tables) read from the
    model's own config, which needs the model at hand."""
    if table.meta.n_layers is not None:
        return table.meta.n_layers
    from transformers import AutoConfig

    from prunesearch._models import resolve
    from prunesearch.errors import ModelNotFoundError

    try:
        folder, _ = resolve(table.conditions.model)
    except ModelNotFoundError:
        raise TableError(
            f"{table.path} does not record its model's layers, and its model {table.conditions.model!r} is not at "
            "hand to read them from: re-profile the table, or predict where the model is installed"
        ) from None
    return int(AutoConfig.from_pretrained(folder).num_hidden_layers)
