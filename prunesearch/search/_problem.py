"""A search problem: the space, the fitness, the objectives and constraints, the budget and the store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prunesearch._config import Config
from prunesearch._objectives import OBJECTIVES, Constraint, Metrics
from prunesearch.errors import InfeasibleTargetError
from prunesearch.search._store import Evaluation, RunStore, key_of
from prunesearch.space import Space


def check_feasible(
    metrics: Metrics, constraints: Sequence[Constraint], *, margin: float = 0.0, confidence: float = 0.0
) -> None:
    """Refuse constraints that even the model with every block removed cannot meet (every built-in objective
    is best there), naming the one that fails and how far it is."""
    lightest = np.zeros((1, 2 * metrics.space.n_layers), dtype=np.int64)
    for c in constraints:
        value = float(metrics.held([c.objective], lightest, confidence=confidence)[c.objective][0])
        if not c.tightened(margin).satisfied(np.array([value]))[0]:
            searched = f" (searched with a {margin:.0%} margin)" if margin and not c.of.exact else ""
            raise InfeasibleTargetError(
                f"{c.describe()}{searched} cannot be met: the model with every block removed is predicted at "
                f"{c.of.format(value)}; relax that limit"
            )


class BudgetExhausted(Exception):
    """The evaluation or time budget is spent: algorithms stop and the runner reports."""


@dataclass
class Budget:
    """The constraints configs are held to, and what predicts them: a config is within the budget when every
    constraint holds on its predicted objectives, tightened by ``margin`` where predicted from timings and held
    ``confidence`` of the oracle's uncertainties to their safe side. Built once (pipeline.prepare), where an
    unreachable target is refused before anything slow; the search, the measured pick and the report ask it."""

    metrics: Metrics
    constraints: list[Constraint]
    margin: float = 0.0
    confidence: float = 0.0

    def __post_init__(self) -> None:
        check_feasible(self.metrics, self.constraints, margin=self.margin, confidence=self.confidence)
        #: the constraints as predictions are held to them (margin-tightened)
        self.limits = [c.tightened(self.margin) for c in self.constraints]

    @property
    def space(self) -> Space:
        return self.metrics.space

    def held(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        """The constrained objectives as the budget holds them: ``confidence`` uncertainties to the safe side."""
        return self.metrics.held([c.objective for c in self.limits], np.atleast_2d(genomes), confidence=self.confidence)

    def feasible(self, genomes: np.ndarray) -> np.ndarray:
        genomes = np.atleast_2d(genomes)
        values = self.held(genomes)
        ok = np.ones(len(genomes), dtype=bool)
        for c in self.limits:
            ok &= c.satisfied(values[c.objective])
        return ok

    def excess(self, genomes: np.ndarray) -> np.ndarray:
        """How far past the constraints, summed over them as shares of their (margin-tightened) limits:
        0 where feasible; the penalty and the cost that penalised and greedy searches trade loss against."""
        genomes = np.atleast_2d(genomes)
        values = self.held(genomes)
        return sum((c.excess(values[c.objective]) for c in self.limits), np.zeros(len(genomes)))

    @contextmanager
    def held_to(self, constraints: Sequence[Constraint]) -> Iterator[None]:
        """The limits replaced by ``constraints`` (margin-tightened) for the ``with`` block: a front swept at
        other limits than the target's."""
        limits = self.limits
        self.limits = [c.tightened(self.margin) for c in constraints]
        try:
            yield
        finally:
            self.limits = limits

    def describe(self) -> str:
        limits = ", ".join(c.describe() for c in self.constraints) or "none"
        held = []
        if self.margin:
            held.append(f"a {self.margin:.1%} margin")
        if self.confidence:
            held.append(f"{self.confidence:g} sd of the oracle's uncertainty in reserve")
        return limits + (f" (searched with {' and '.join(held)})" if held else "")


@dataclass
class SearchProblem:
    """Everything an algorithm needs. ``fitness(config, tokens) -> loss`` (lower is better); a config is
    feasible when it is within the ``budget``, and multi-objective algorithms trade off ``objectives``. With a
    ``loop`` (search/_loop.py), the search's best candidates are measured on the device at intervals and the
    oracle corrected: feasibility then moves."""

    space: Space
    fitness: Callable[[Config, int], float]
    budget: Budget
    store: RunStore
    objectives: tuple[str, ...] = ("loss", "latency_ms")
    max_evaluations: int = 200
    max_seconds: float | None = None
    on_evaluation: Callable[[int, float, dict], None] | None = None
    executor: Any = None  # an executor of search.make_executor: batches of new configs computed in parallel
    #: per genome entry, the importance share of each unit group (LevelDatabase.group_importance):
    #: where an algorithm starts from importance (policy gradient's initial keep-probabilities)
    unit_importance: list[np.ndarray] | None = None
    #: measurement in the loop (search.MeasurementLoop); None: the oracle stays as it was built
    loop: Any = None
    evaluations: int = field(default=0, init=False)
    _started: float = field(default_factory=time.monotonic, init=False)

    def __post_init__(self) -> None:
        #: every predicted objective stored with an evaluation: the constraints', the traded-off ones', and
        #: whatever else the metrics can give (a table without energy gives none)
        wanted = [c.objective for c in self.constraints] + [o for o in self.objectives if o != "loss"]
        self.recorded = list(dict.fromkeys(wanted + self.metrics.predicted()))

    @property
    def metrics(self) -> Metrics:
        return self.budget.metrics

    @property
    def constraints(self) -> list[Constraint]:
        return self.budget.constraints

    @property
    def oracle(self):
        return self.metrics.oracle

    def predict(self, genomes: np.ndarray, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        return self.metrics.of(names or self.recorded, np.atleast_2d(genomes))

    def feasible(self, genomes: np.ndarray) -> np.ndarray:
        return self.budget.feasible(genomes)

    def excess(self, genomes: np.ndarray) -> np.ndarray:
        return self.budget.excess(genomes)

    def objective_matrix(self, genomes: np.ndarray, losses: np.ndarray) -> np.ndarray:
        """(n, len(objectives)), each column turned so that lower is better (Pareto fronts, NSGA-II)."""
        values = self.predict(genomes, [o for o in self.objectives if o != "loss"])
        values["loss"] = np.asarray(losses, dtype=float)
        return np.column_stack([OBJECTIVES[o].minimised(values[o]) for o in self.objectives])

    def evaluations_left(self) -> int:
        return max(0, self.max_evaluations - self.evaluations)

    def _out_of_time(self) -> bool:
        return self.max_seconds is not None and time.monotonic() - self._started > self.max_seconds

    def evaluate(self, genomes: np.ndarray, *, tokens: int, algorithm: str, stage: str) -> np.ndarray:
        """Losses of ``genomes`` at a token budget; stored results are reused, new ones stored."""
        genomes = np.atleast_2d(np.asarray(genomes, dtype=np.int64))
        if self.loop is not None and self.loop.due(self.evaluations):
            self.loop.run(self)  # between batches: a batch is settled against one correction
        self._settle(genomes, tokens, algorithm=algorithm, stage=stage)
        losses = np.empty(len(genomes))
        for i, genome in enumerate(genomes):
            known = self.store.get(genome, tokens)
            if self.evaluations >= self.max_evaluations or self._out_of_time():
                raise BudgetExhausted
            if known is None:  # _settle stores every genome within the budget: a search must not end quietly
                raise RuntimeError(f"config {key_of(genome, tokens)} was evaluated but is missing from the store")
            self.evaluations += 1
            losses[i] = known.loss
            if self.on_evaluation is not None:
                self.on_evaluation(self.evaluations, known.loss, known.metrics)
        return losses

    def _settle(self, genomes: np.ndarray, tokens: int, *, algorithm: str, stage: str) -> None:
        """Store every new genome the loop will reach within the evaluation budget: claim them, compute
        this process's share (in parallel with an executor), wait for the share other processes sharing
        the study claimed, and take over the claims of any that stopped. Trials are stored in the order
        the genomes come, so a parallel run stores the same trials as a serial one."""
        reach = genomes[: self.evaluations_left()]
        first = {key_of(g, tokens): i for i, g in reversed(list(enumerate(reach)))}
        pending = [k for k in sorted(first, key=first.get) if self.store.get(k[0], tokens) is None]
        predicted = self.predict(reach) if pending else {}
        while pending and not self._out_of_time():
            mine, others = self.store.claim(pending)
            self._compute(mine, tokens, {k: first[k] for k in mine}, predicted, algorithm=algorithm, stage=stage)
            self.store.wait(others)  # until all are stored or some were orphaned: those are claimed again
            pending = [k for k in pending if self.store.get(k[0], tokens) is None]

    def _compute(self, keys, tokens: int, rows: dict, predicted: dict, *, algorithm: str, stage: str) -> None:
        configs = [self.space.from_genome(np.array(k[0])) for k in keys]
        if self.executor is not None and len(keys) >= 2:
            losses = self.executor.map(self.fitness, configs, tokens)
        else:
            losses = (None for _ in keys)  # computed one at a time below, each stored as it is done
        for j, (key, config, loss) in enumerate(zip(keys, configs, losses)):
            if loss is None:
                if self._out_of_time():
                    self.store.release(keys[j:])
                    return
                loss = self.fitness(config, tokens)
            i = rows[key]
            evaluation = Evaluation(loss=float(loss), metrics={name: float(v[i]) for name, v in predicted.items()})
            self.store.add(key, evaluation, config=config.to_dict(), algorithm=algorithm, stage=stage)


def best_within_budget(problem: SearchProblem) -> np.ndarray | None:
    """Lowest-loss stored genome meeting every constraint, among those evaluated on the largest token
    budget (losses on different budgets are not comparable)."""
    items = problem.store.items()
    if not items:
        return None
    top = max(tokens for _, tokens, _ in items)
    final = [(ev.loss, genome) for genome, tokens, ev in items if tokens == top]
    feasible = problem.feasible(np.array([g for _, g in final]))
    candidates = [pair for pair, ok in zip(final, feasible) if ok]
    return np.array(min(candidates)[1]) if candidates else None
