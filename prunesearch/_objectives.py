"""Objectives and constraints: one definition each.

An ``Objective`` has a name, a unit, a direction and how it is known for a batch of genomes
(``predict``; the quality loss alone is evaluated by the fitness instead). A ``Constraint`` is an
objective and a limit. Feasibility, repair and fill, the run store's values and directions,
NSGA-II, the report's fronts, ``export --pick`` and export.json all read these, so an objective
added with ``register_objective`` is known everywhere at once.

Built in: ``loss`` (distillation loss, evaluated), ``latency_ms`` and ``speedup`` (the oracle's
prediction, its table corrected by configs measured during the search, as milliseconds or as a
speed-up over the dense model), ``energy_mj`` (likewise, where the table has energy per inference),
``params`` and ``size_mb`` (exact, from the model's shapes). A predicted objective also says how
uncertain it is (``spread``), and a search may hold its constraints a few of those to the safe side.
Peak activation memory is not offered: it depends on the runtime's memory planner, which no table
here measures.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from prunesearch._registry import Registry
from prunesearch.errors import SpecError

Direction = Literal["minimize", "maximize"]


class ObjectiveUnavailable(SpecError):
    """An objective the model or table at hand cannot give (energy from a table without it)."""


@dataclass(frozen=True)
class Objective:
    name: str
    unit: str
    direction: Direction
    #: what plots and tables call it
    label: str
    #: ``predict(metrics, genomes)`` for a batch; None: evaluated by the fitness (the loss)
    predict: Callable[[Metrics, np.ndarray], np.ndarray] | None = None
    #: ``spread(metrics, genomes)``: the prediction's uncertainty as the sd of its log; None: known exactly
    spread: Callable[[Metrics, np.ndarray], np.ndarray] | None = None
    #: exact from the shapes (no margin, nothing to measure) rather than predicted from timings
    exact: bool = False
    #: short names a constraint may use ("latency<=8")
    aliases: tuple[str, ...] = ()

    def minimised(self, values: np.ndarray) -> np.ndarray:
        """Values turned so that lower is better (Pareto fronts, NSGA-II)."""
        values = np.asarray(values, dtype=float)
        return values if self.direction == "minimize" else -values

    def format(self, value: float) -> str:
        if self.unit == "x":
            return f"{value:.3f}x"
        if self.name == "params":
            return f"{value / 1e6:.2f}M"
        return f"{value:.4g} {self.unit}".strip()


OBJECTIVES: Registry[Objective] = Registry("objective", error=SpecError)


def register_objective(objective: Objective) -> Objective:
    """Make an objective known to specs, searches, reports and export."""
    return OBJECTIVES.register(objective.name, objective)


def objective(name: str) -> Objective:
    """The objective named ``name`` or one of its aliases; SpecError listing the known ones otherwise."""
    for o in OBJECTIVES.values():
        if name == o.name or name in o.aliases:
            return o
    known = ", ".join(f"{o.name}" + (f" ({', '.join(o.aliases)})" if o.aliases else "") for o in OBJECTIVES.values())
    raise SpecError(f"unknown objective {name!r}; known: {known}")


class Metrics:
    """What predictions of a batch of genomes draw on: the oracle (a latency table and its correction; None:
    no table), the search space, and exact parameter counts from the dense model's adapter."""

    def __init__(self, *, space, adapter, oracle=None, bytes_per_param: int = 4) -> None:
        self.space = space
        self.adapter = adapter
        self.oracle = oracle
        self.bytes_per_param = bytes_per_param
        self._params: tuple[int, np.ndarray] | None = None

    def require_oracle(self, name: str):
        if self.oracle is None:
            raise ObjectiveUnavailable(f"{name} is predicted from a latency table, and this search has none")
        return self.oracle

    def params(self, genomes: np.ndarray) -> np.ndarray:
        """Exact parameter counts of the pruned models, vectorised: the dense count plus, per layer, a
        gather from a table of every (heads level, FFN level) pair (a pre-LN layer with both blocks
        removed drops its norms too, so the pair, not each block alone, decides)."""
        if self._params is None:
            dense = self.space.dense()
            total = self.adapter.param_count(dense)
            tables = []
            for i, layer in enumerate(self.space.layers):
                table = np.zeros((len(layer.heads), len(layer.ffn)), dtype=np.int64)
                for a, h in enumerate(layer.heads):
                    for b, w in enumerate(layer.ffn):
                        config = dense.with_layer(i, heads=h, ffn=w)
                        table[a, b] = self.adapter.param_count(config) - total
                tables.append(table)
            self._params = (total, tables)
        total, tables = self._params
        g = np.atleast_2d(np.asarray(genomes, dtype=np.int64))
        return total + sum(t[g[:, 2 * i], g[:, 2 * i + 1]] for i, t in enumerate(tables))

    def of(self, names: Sequence[str], genomes: np.ndarray) -> dict[str, np.ndarray]:
        """The predicted objectives ``names`` (those that can be predicted) of ``genomes``."""
        return {n: OBJECTIVES[n].predict(self, genomes) for n in names if OBJECTIVES[n].predict is not None}

    def held(self, names: Sequence[str], genomes: np.ndarray, *, confidence: float) -> dict[str, np.ndarray]:
        """``of``, each uncertain prediction moved ``confidence`` of its spreads to its unfavourable side (slower,
        costlier): what a constraint is held to when a search keeps that much in reserve."""
        values = self.of(names, genomes)
        for name, value in values.items():
            o = OBJECTIVES[name]
            if confidence and o.spread is not None:
                sign = 1.0 if o.direction == "minimize" else -1.0
                values[name] = value * np.exp(sign * confidence * o.spread(self, genomes))
        return values

    def predicted(self) -> list[str]:
        """Every built-in or registered objective these metrics can give (energy only from a table with it)."""
        names = []
        for o in OBJECTIVES.values():
            if o.predict is None:
                continue
            try:
                o.predict(self, np.zeros((1, len(self.space.genome_upper)), dtype=np.int64))
            except ObjectiveUnavailable:
                continue
            names.append(o.name)
        return names


def _energy(metrics: Metrics, genomes: np.ndarray) -> np.ndarray:
    energy = metrics.require_oracle("energy_mj").energy_mj(genomes)
    if energy is None:
        raise ObjectiveUnavailable(
            "energy_mj needs a latency table with an energy_mj column; this one has none: profile one with energy "
            "(an NVIDIA GPU: `prunesearch profile --backend torch-cuda --power-s 2`; a Jetson: a bundle from "
            "`prunesearch profile --emit-bundle`, run there with --power-s), or drop the energy limit"
        )
    return energy


LOSS = register_objective(Objective("loss", "", "minimize", "distillation loss vs dense (lower is better)"))
LATENCY = register_objective(
    Objective(
        "latency_ms",
        "ms",
        "minimize",
        "predicted latency (ms)",
        predict=lambda m, g: m.require_oracle("latency_ms").latency_ms(g),
        spread=lambda m, g: m.oracle.ratio_spread(g),
        aliases=("latency", "ms"),
    )
)
SPEEDUP = register_objective(
    Objective(
        "speedup",
        "x",
        "maximize",
        "predicted speed-up over the dense model",
        predict=lambda m, g: m.require_oracle("speedup").speedup(g),
        spread=lambda m, g: m.oracle.ratio_spread(g),
    )
)
ENERGY = register_objective(
    Objective(
        "energy_mj",
        "mJ",
        "minimize",
        "predicted energy per inference (mJ)",
        predict=_energy,
        spread=lambda m, g: m.oracle.energy_spread(g),
        aliases=("energy",),
    )
)
PARAMS = register_objective(
    Objective("params", "", "minimize", "parameters", predict=lambda m, g: m.params(g).astype(float), exact=True)
)
SIZE = register_objective(
    Objective(
        "size_mb",
        "MB",
        "minimize",
        "weights (MB)",
        exact=True,
        aliases=("size",),
        predict=lambda m, g: m.params(g) * m.bytes_per_param / 1e6,
    )
)


class Constraint(BaseModel):
    """An objective held to a limit: at most it (minimised objectives) or at least it (maximised)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objective: str
    limit: float

    @field_validator("objective")
    @classmethod
    def _known(cls, name: str) -> str:
        try:
            return objective(name).name
        except SpecError as exc:
            raise ValueError(str(exc)) from None

    @property
    def of(self) -> Objective:
        return OBJECTIVES[self.objective]

    def tightened(self, margin: float) -> Constraint:
        """The limit a search holds predictions to: tightened by ``margin`` (a share of it) where the
        objective is predicted from timings, so that what is measured later still meets the constraint."""
        if self.of.exact or not margin:
            return self
        limit = self.limit * (1 - margin) if self.of.direction == "minimize" else self.limit / (1 - margin)
        return self.model_copy(update={"limit": limit})

    def satisfied(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        if self.of.direction == "minimize":
            return values <= self.limit * (1 + 1e-9)
        return values >= self.limit * (1 - 1e-9)

    def excess(self, values: np.ndarray) -> np.ndarray:
        """How far past the limit, as a share of it (0 where met): a penalty scale shared by all objectives."""
        values = np.asarray(values, dtype=float)
        if self.of.direction == "minimize":
            return np.maximum(values / self.limit - 1.0, 0.0)
        return np.maximum(self.limit / np.maximum(values, 1e-12) - 1.0, 0.0)

    def describe(self) -> str:
        sense = "<=" if self.of.direction == "minimize" else ">="
        return f"{self.objective} {sense} {self.of.format(self.limit)}"


_CONSTRAINT = re.compile(r"^\s*([a-z_]+)\s*(<=|>=)\s*([0-9.]+(?:e[+-]?[0-9]+)?)\s*$", re.IGNORECASE)


def parse_constraints(text: str) -> list[Constraint]:
    """ "params<=40e6", "speedup>=2", "latency<=8, energy<=5": one or more constraints, comma-separated."""
    constraints = []
    for part in text.split(","):
        m = _CONSTRAINT.match(part)
        if m is None:
            raise SpecError(
                f"{part.strip()!r} is not a constraint: write NAME<=LIMIT or NAME>=LIMIT "
                "(e.g. params<=40e6, speedup>=2, latency<=8.5)"
            )
        o = objective(m.group(1).lower())
        sense = "<=" if o.direction == "minimize" else ">="
        if m.group(2) != sense:
            raise SpecError(f"{o.name} is {o.direction}d: its limit is written {o.name}{sense}LIMIT")
        if o.predict is None:
            raise SpecError(f"{o.name} is evaluated by the fitness, not known before: it cannot be a limit")
        constraints.append(Constraint(objective=o.name, limit=float(m.group(3))))
    return constraints
