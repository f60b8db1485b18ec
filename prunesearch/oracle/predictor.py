"""The additive predictor: base + Σ_layers attn[heads] + ffn[width], vectorised over genomes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from prunesearch.config import Config
from prunesearch.errors import TableError
from prunesearch.oracle.table import ENERGY, LatencyTable
from prunesearch.space import Space


class Predictor:
    def __init__(self, table: LatencyTable, space: Space, *, calibrated: bool = True) -> None:
        self.table = table
        self.space = space
        cal = table.meta.calibration if calibrated else None
        self.scale = cal.scale if cal else 1.0
        self.offset = cal.offset_ms if cal else 0.0
        self._rows = np.arange(2 * space.n_layers)
        try:
            self._latency = self._levels(table.time)
        except TableError as exc:
            raise TableError(f"{exc} (the table's grid does not cover this search space)") from None
        self._energy = None
        if ENERGY in table.rows:  # every latency row was found above, so every energy lookup is too
            energy = table.rows.set_index(["kind", "size"])[ENERGY]
            self._energy = self._levels(
                lambda kind, size: 0.0 if size == 0 and kind != "base" else float(energy[kind, size]))

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

    def raw_ms(self, genomes: np.ndarray) -> np.ndarray:
        """The uncalibrated additive sum."""
        return self._sum(self._latency, genomes)

    def latency_ms(self, genomes: np.ndarray) -> np.ndarray:
        return self.scale * self.raw_ms(genomes) + self.offset

    def energy_mj(self, genomes: np.ndarray) -> np.ndarray | None:
        """Energy per inference, summed like latency from the table's ``energy_mj`` rows (uncalibrated: the
        table's calibration fits latency only); None for a table without them."""
        return None if self._energy is None else self._sum(self._energy, genomes)

    def config_latency_ms(self, config: Config) -> float:
        return float(self.latency_ms(self.space.to_genome(config))[0])

    @property
    def dense_ms(self) -> float:
        return self.config_latency_ms(self.space.dense())
