"""A toy search problem with a known optimum: latency is additive, and layer i's blocks
matter with weight ``IMPORTANCE[i]``, so the best config keeps the important layers."""

from __future__ import annotations

import numpy as np

from prunesearch import Config, Constraint, Metrics
from prunesearch.search import Budget, RunStore, SearchProblem
from prunesearch.space import Space

IMPORTANCE = np.array([4.0, 1.0, 0.25, 2.0])
SPACE = Space.uniform(n_layers=4, n_heads=4, ffn_width=512, head_dim=8, hidden_size=32, ffn_step=128)


class AdditiveLatency:
    """Stand-in oracle: 1 ms fixed + 0.5 ms a head level + 0.25 ms an FFN level (dense: 16 ms)."""

    reference_ms = 16.0

    def latency_ms(self, genomes: np.ndarray) -> np.ndarray:
        g = np.atleast_2d(genomes)
        return 1.0 + 0.5 * g[:, 0::2].sum(1) + 0.25 * g[:, 1::2].sum(1)

    def speedup(self, genomes: np.ndarray) -> np.ndarray:
        return self.reference_ms / self.latency_ms(genomes)

    def energy_mj(self, genomes: np.ndarray) -> None:
        return None


class CountingAdapter:
    """Stand-in for a model's adapter: a config's 'parameters' are its kept heads plus FFN channels."""

    def param_count(self, config: Config) -> int:
        return sum(config.heads) + sum(config.ffn)


def toy_metrics() -> Metrics:
    return Metrics(space=SPACE, adapter=CountingAdapter(), oracle=AdditiveLatency())


def toy_loss(config: Config, tokens: int) -> float:
    heads = np.array(config.heads) / 4
    ffn = np.array(config.ffn) / 512
    return float((IMPORTANCE * ((1 - heads) ** 2 + (1 - ffn) ** 2)).sum())


def toy_problem(
    storage: str,
    *,
    name: str = "toy",
    resume: bool = False,
    target_ms: float = 7.0,
    max_evaluations: int = 120,
    constraints: list[Constraint] | None = None,
    objectives: tuple[str, ...] = ("loss", "latency_ms"),
) -> SearchProblem:
    return SearchProblem(
        space=SPACE,
        fitness=toy_loss,
        budget=Budget(
            toy_metrics(),
            [Constraint(objective="latency_ms", limit=target_ms)] if constraints is None else constraints,
        ),
        store=RunStore.open(storage, name, resume=resume, objectives=objectives),
        objectives=objectives,
        max_evaluations=max_evaluations,
    )
