"""The additive predictor: base + Σ_layers attn[heads] + ffn[width], vectorised over genomes."""

from __future__ import annotations

import numpy as np

from prunesearch.config import Config
from prunesearch.errors import TableError
from prunesearch.oracle.table import LatencyTable
from prunesearch.space import Space


class Predictor:
    def __init__(self, table: LatencyTable, space: Space, *, calibrated: bool = True) -> None:
        self.table = table
        self.space = space
        cal = table.meta.calibration if calibrated else None
        self.scale = cal.scale if cal else 1.0
        self.offset = cal.offset_ms if cal else 0.0
        try:
            self.base = table.time("base", 0)
            # per genome entry, the cost of each level (ragged grids padded with +inf)
            width = int(space.genome_upper.max()) + 1
            self.costs = np.full((2 * space.n_layers, width), np.inf)
            for i, layer in enumerate(space.layers):
                for j, (kind, grid) in enumerate((("attn", layer.heads), ("ffn", layer.ffn))):
                    self.costs[2 * i + j, : len(grid)] = [table.time(kind, s) for s in grid]
        except TableError as exc:
            raise TableError(f"{exc} (the table's grid does not cover this search space)") from None
        self._rows = np.arange(2 * space.n_layers)

    def raw_ms(self, genomes: np.ndarray) -> np.ndarray:
        """The uncalibrated additive sum."""
        g = np.atleast_2d(np.asarray(genomes, dtype=np.int64))
        return self.base + self.costs[self._rows, g].sum(axis=1)

    def latency_ms(self, genomes: np.ndarray) -> np.ndarray:
        return self.scale * self.raw_ms(genomes) + self.offset

    def energy_mj(self, genomes: np.ndarray) -> np.ndarray | None:
        return None  # tables measured here carry no energy columns

    def config_latency_ms(self, config: Config) -> float:
        return float(self.latency_ms(self.space.to_genome(config))[0])

    @property
    def dense_ms(self) -> float:
        return self.config_latency_ms(self.space.dense())
