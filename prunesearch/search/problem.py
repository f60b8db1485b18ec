"""A search problem: the space, the fitness, the latency oracle, the budget and the store."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from prunesearch.config import Config
from prunesearch.errors import InfeasibleTargetError
from prunesearch.search.store import Evaluation, RunStore
from prunesearch.space import Space


class LatencyModel(Protocol):
    def latency_ms(self, genomes: np.ndarray) -> np.ndarray: ...

    def energy_mj(self, genomes: np.ndarray) -> np.ndarray | None: ...


def check_feasible(predictor: LatencyModel, space: Space, target_ms: float) -> None:
    """Refuse a target below the predicted latency of the model with every block removed."""
    lightest = np.zeros((1, 2 * space.n_layers), dtype=np.int64)
    floor = float(predictor.latency_ms(lightest)[0])
    if floor > target_ms:
        raise InfeasibleTargetError(
            f"target {target_ms:.3f} ms is below {floor:.3f} ms, the predicted latency of the "
            "model with every block removed; raise the target (or lower the speed-up)"
        )


class BudgetExhausted(Exception):
    """The evaluation or time budget is spent: algorithms stop and the runner reports."""


@dataclass
class SearchProblem:
    """Everything an algorithm needs. ``fitness(config, tokens) -> loss`` (lower is better)."""

    space: Space
    fitness: Callable[[Config, int], float]
    predictor: LatencyModel
    target_ms: float
    store: RunStore
    params: Callable[[Config], int]
    max_evaluations: int = 200
    max_seconds: float | None = None
    on_evaluation: Callable[[int, float, float], None] | None = None
    executor: Any = None  # search.executor.Executor: batches of new configs computed in parallel
    #: per genome entry, the importance share of each unit group (LevelDatabase.group_importance):
    #: where an algorithm starts from importance (policy gradient's initial keep-probabilities)
    unit_importance: list[np.ndarray] | None = None
    evaluations: int = field(default=0, init=False)
    _started: float = field(default_factory=time.monotonic, init=False)

    def __post_init__(self) -> None:
        check_feasible(self.predictor, self.space, self.target_ms)

    def latency(self, genomes: np.ndarray) -> np.ndarray:
        return self.predictor.latency_ms(np.atleast_2d(genomes))

    def evaluations_left(self) -> int:
        return max(0, self.max_evaluations - self.evaluations)

    def feasible(self, genomes: np.ndarray) -> np.ndarray:
        return self.latency(genomes) <= self.target_ms

    def evaluate(self, genomes: np.ndarray, *, tokens: int, algorithm: str, stage: str) -> np.ndarray:
        """Losses of ``genomes`` at a token budget; stored results are reused, new ones stored."""
        genomes = np.atleast_2d(np.asarray(genomes, dtype=np.int64))
        latencies = self.latency(genomes)
        energies = self.predictor.energy_mj(genomes)
        losses = np.empty(len(genomes))
        computed = self._compute_batch(genomes, tokens)
        for i, genome in enumerate(genomes):
            if self.evaluations >= self.max_evaluations or (
                self.max_seconds is not None and time.monotonic() - self._started > self.max_seconds
            ):
                raise BudgetExhausted
            known = self.store.get(genome, tokens)
            if known is None:
                config = self.space.from_genome(genome)
                loss = computed.get(tuple(genome))
                known = Evaluation(
                    loss=float(self.fitness(config, tokens)) if loss is None else loss,
                    latency_ms=float(latencies[i]),
                    energy_mj=None if energies is None else float(energies[i]),
                    params=int(self.params(config)),
                )
                self.store.add(genome, tokens, known, config=config.to_dict(), algorithm=algorithm, stage=stage)
            self.evaluations += 1
            losses[i] = known.loss
            if self.on_evaluation is not None:
                self.on_evaluation(self.evaluations, known.loss, known.latency_ms)
        return losses

    def _compute_batch(self, genomes: np.ndarray, tokens: int) -> dict[tuple, float]:
        """Losses of the new genomes the serial loop will reach within the evaluation budget,
        computed by the executor; the loop then stores them in the same order as without one."""
        if self.executor is None:
            return {}
        reach = genomes[: self.evaluations_left()]
        new = list(dict.fromkeys(tuple(g) for g in reach if self.store.get(g, tokens) is None))
        if len(new) < 2:
            return {}
        configs = [self.space.from_genome(np.array(g)) for g in new]
        return dict(zip(new, self.executor.map(self.fitness, configs, tokens)))


def best_within_budget(problem: SearchProblem) -> np.ndarray | None:
    """Lowest-loss stored genome within the latency target, among those evaluated on the
    largest token budget (losses on different budgets are not comparable)."""
    items = problem.store.items()
    if not items:
        return None
    top = max(tokens for _, tokens, _ in items)
    feasible = [(ev.loss, genome) for genome, tokens, ev in items if tokens == top and ev.latency_ms <= problem.target_ms]
    return np.array(min(feasible)[1]) if feasible else None
