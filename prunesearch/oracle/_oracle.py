"""The oracle: a latency table, the correction the hardware taught it, and the way to measure here.

Built once per run and passed to everything that asks "how fast is this config": the search's feasibility,
repair and stored predictions, the measurement loop, the measured pick, the report and ``predict``. A table is
a model of the hardware; the hardware corrects it where the search looks: whole configs measured beside the
dense model (``measure``, or measurements stored with a run, ``add``) fit ``Correction``, and from then on every
prediction is the corrected one, with its uncertainty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, NonNegativeInt

from prunesearch._config import Config
from prunesearch.errors import PruneSearchError
from prunesearch.oracle._conditions import Conditions
from prunesearch.oracle._correction import Correction
from prunesearch.oracle._measure import Progress, time_configs
from prunesearch.oracle._predictor import Predictor
from prunesearch.oracle._table import LatencyTable
from prunesearch.oracle._timing import Measurement, SideBySide, TimingOptions
from prunesearch.space import Space

#: where a measured config comes from: the table's check, the search's loop, the export's pick, verify
Stage = Literal["check", "search", "pick", "verify"]


class MeasuredConfig(BaseModel):
    """One whole config timed beside the dense model, with what the oracle predicted for it just before."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    genome: tuple[int, ...]
    measurement: Measurement
    #: the table's ratio (calibrated additive sum) and the corrected one, with its sd (log scale), before this
    table_ratio: float
    corrected_ratio: float
    corrected_sd: float
    #: the measurement window it was timed in, and the search's evaluations when that window ran
    window: NonNegativeInt
    stage: Stage
    evaluations: NonNegativeInt = 0
    #: the table's energy per inference for it, where the table and the measurement have one
    table_energy_mj: float | None = None

    @property
    def residual(self) -> float:
        """log(measured / table): what the correction learns."""
        return float(np.log(self.measurement.ratio / self.table_ratio))


@dataclass
class Measurer:
    """How configs of one model are measured here: pruned and timed side by side with its dense model under a
    table's conditions (oracle.time_configs). ``source``: the level database whose units are measured (timing
    depends on the shapes alone, so without one, units by weight magnitude)."""

    loaded: object
    conditions: Conditions
    source: object = None
    #: seconds each model also runs for its energy per inference (0: none; only where an energy meter reads)
    power_s: float = 0.0

    def time(
        self,
        configs: Mapping[str, Config],
        *,
        options: TimingOptions = TimingOptions(),
        progress: Progress | None = None,
        keep_graphs: Path | None = None,
    ) -> SideBySide:
        return time_configs(
            self.loaded,
            configs,
            conditions=self.conditions,
            source=self.source,
            options=options,
            progress=progress,
            keep_graphs=keep_graphs,
            power_s=self.power_s,
        )


class Oracle:
    """Predictions of a table for a space, corrected by whole configs measured beside the dense model."""

    def __init__(
        self,
        table: LatencyTable,
        space: Space,
        *,
        reference_ms: float | None = None,
        measurer: Measurer | None = None,
    ) -> None:
        self.table = table
        self.space = space
        self.predictor = Predictor(table, space, reference_ms=reference_ms)
        self.measurer = measurer
        self.measurements: list[MeasuredConfig] = []
        self._ratio = Correction(space)
        self._energy = Correction(space, anchored=False)  # the dense model's energy is measured, not 1

    @property
    def conditions(self) -> Conditions:
        return self.table.conditions

    @property
    def reference_ms(self) -> float:
        """The dense model's milliseconds that ratios are scaled by (measured now, or with the table)."""
        return self.predictor.reference_ms

    @reference_ms.setter
    def reference_ms(self, ms: float) -> None:
        self.predictor.reference_ms = float(ms)

    @property
    def has_energy(self) -> bool:
        return self.predictor.energy_mj(self.space.genome_upper) is not None

    # -- predictions --------------------------------------------------------------------------------

    def table_ratio(self, genomes: np.ndarray) -> np.ndarray:
        """The table's own prediction (calibrated additive sum), as a fraction of the dense model's time."""
        return self.predictor.ratio(genomes)

    def ratio(self, genomes: np.ndarray) -> np.ndarray:
        """The corrected prediction, as a fraction of the dense model's time."""
        mean, _ = self._ratio.predict(genomes)
        return self.table_ratio(genomes) * np.exp(mean)

    def ratio_spread(self, genomes: np.ndarray) -> np.ndarray:
        """The corrected prediction's uncertainty: the sd of its log (about a relative sd)."""
        return self._ratio.predict(genomes)[1]

    def speedup(self, genomes: np.ndarray) -> np.ndarray:
        return 1.0 / self.ratio(genomes)

    def latency_ms(self, genomes: np.ndarray) -> np.ndarray:
        return self.ratio(genomes) * self.reference_ms

    def table_energy_mj(self, genomes: np.ndarray) -> np.ndarray | None:
        return self.predictor.energy_mj(genomes)

    def energy_mj(self, genomes: np.ndarray) -> np.ndarray | None:
        """Energy per inference, corrected where measured energies are known; None for a table without it."""
        table = self.table_energy_mj(genomes)
        return None if table is None else table * np.exp(self._energy.predict(genomes)[0])

    def energy_spread(self, genomes: np.ndarray) -> np.ndarray:
        return self._energy.predict(genomes)[1]

    def predictions(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        """Every timing objective of ``genomes`` as the oracle predicts it now (``latency_ms``, ``speedup``,
        ``energy_mj`` where the table has it), the table's own speed-up (``table_speedup``) and the corrected
        prediction's uncertainty (``spread``, the sd of its log): what picks and reports show side by side."""
        genomes = np.atleast_2d(np.asarray(genomes, dtype=np.int64))
        ratio = self.ratio(genomes)
        out = {
            "latency_ms": ratio * self.reference_ms,
            "speedup": 1.0 / ratio,
            "table_speedup": 1.0 / self.table_ratio(genomes),
            "spread": self.ratio_spread(genomes),
        }
        energy = self.energy_mj(genomes)
        return out if energy is None else out | {"energy_mj": energy}

    def config_ratio(self, config: Config) -> float:
        return float(self.ratio(self.space.to_genome(config))[0])

    def config_speedup(self, config: Config) -> float:
        return 1.0 / self.config_ratio(config)

    # -- measurements -------------------------------------------------------------------------------

    @property
    def can_measure(self) -> bool:
        return self.measurer is not None

    @property
    def next_window(self) -> int:
        """The number the next measurement window gets (windows are numbered in the order they ran)."""
        return 1 + max((m.window for m in self.measurements), default=-1)

    def measured(self, genome: Sequence[int]) -> list[MeasuredConfig]:
        key = tuple(int(g) for g in genome)
        return [m for m in self.measurements if m.genome == key]

    def measure(
        self,
        genomes: np.ndarray,
        *,
        stage: Stage,
        evaluations: int = 0,
        options: TimingOptions = TimingOptions(),
        progress: Progress | None = None,
        keep_graphs: Path | None = None,
        source=None,
    ) -> list[MeasuredConfig]:
        """Time ``genomes`` side by side with the dense model in one window (``source``: the units measured,
        default the measurer's; ``keep_graphs``: a folder the graphs stay in, ``config-<i>.onnx`` for the i-th
        genome), record them and refit the correction."""
        if self.measurer is None:
            raise PruneSearchError(
                f"configs cannot be measured here: the table is for {self.conditions.backend} on "
                f"{self.conditions.device}, which is not at hand"
            )
        genomes = np.atleast_2d(np.asarray(genomes, dtype=np.int64))
        names = {f"config-{i}": self.space.from_genome(g) for i, g in enumerate(genomes)}
        measurer = self.measurer if source is None else replace(self.measurer, source=source)
        side = measurer.time(names, options=options, progress=progress, keep_graphs=keep_graphs)
        records = self.records(genomes, [side[name] for name in names], stage=stage, evaluations=evaluations)
        self.add(records)
        return records

    def records(
        self, genomes: np.ndarray, measurements: Sequence[Measurement], *, stage: Stage, evaluations: int = 0
    ) -> list[MeasuredConfig]:
        """Measurements of ``genomes`` from one window, with what this oracle predicted for them now."""
        genomes = np.atleast_2d(np.asarray(genomes, dtype=np.int64))
        window = self.next_window
        table, corrected, sd = self.table_ratio(genomes), self.ratio(genomes), self.ratio_spread(genomes)
        energy = self.table_energy_mj(genomes)
        return [
            MeasuredConfig(
                genome=tuple(int(v) for v in g),
                measurement=m,
                table_ratio=float(table[i]),
                corrected_ratio=float(corrected[i]),
                corrected_sd=float(sd[i]),
                window=window,
                stage=stage,
                evaluations=evaluations,
                table_energy_mj=None if energy is None or m.energy_mj is None else float(energy[i]),
            )
            for i, (g, m) in enumerate(zip(genomes, measurements))
        ]

    def add(self, records: Sequence[MeasuredConfig]) -> None:
        """Take in measured configs (measured now, or stored with a run) and refit the corrections."""
        self.measurements.extend(records)
        ms = self.measurements
        self._ratio.fit(
            np.array([m.genome for m in ms]),
            np.array([m.residual for m in ms]),
            np.array([m.measurement.se / m.measurement.ratio for m in ms]),
            np.array([m.window for m in ms]),
        )
        energetic = [m for m in ms if m.table_energy_mj is not None and m.measurement.energy_mj]
        self._energy.fit(
            np.array([m.genome for m in energetic], dtype=np.int64),
            np.array([np.log(m.measurement.energy_mj / m.table_energy_mj) for m in energetic]),
            np.full(len(energetic), 0.01),  # an energy counter's reading has no paired error estimate
            np.array([m.window for m in energetic]),
        )

    def describe(self) -> str:
        path = self.table.path or "(in memory)"
        measured = f"; corrected by {len(self.measurements)} measured configs" if self.measurements else ""
        return f"{path}; dense model {self.reference_ms:.3f} ms{measured}"
