"""Run one algorithm on a problem: options validated, seeded, budget-bounded, resumable."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from pydantic import BaseModel, ValidationError

from prunesearch.config import Config
from prunesearch.errors import SpecError
from prunesearch.search.evolution import EvolutionOptions, evolve
from prunesearch.search.nsga import NSGA2Options, nsga2, optuna_nsga2
from prunesearch.search.policy_gradient import PolicyGradientOptions, policy_gradient
from prunesearch.search.problem import BudgetExhausted, SearchProblem, best_within_budget
from prunesearch.search.random_search import RandomOptions, random_search
from prunesearch.search.supernet import SupernetOptions, supernet

Algorithm = Callable[[SearchProblem, BaseModel, np.random.Generator], "np.ndarray | None"]

ALGORITHMS: dict[str, tuple[type[BaseModel], Algorithm]] = {
    "evolution": (EvolutionOptions, evolve),
    "random": (RandomOptions, random_search),
    "nsga2": (NSGA2Options, nsga2),
    "optuna_nsga2": (NSGA2Options, optuna_nsga2),
    "policy_gradient": (PolicyGradientOptions, policy_gradient),
    "supernet": (SupernetOptions, supernet),
}


@dataclass(frozen=True)
class SearchResult:
    algorithm: str
    best: Config | None
    best_loss: float | None
    best_latency_ms: float | None
    evaluations: int  # evaluations the algorithm asked for (replayed ones included)
    stored: int  # trials in the study at the end
    seconds: float


def algorithm_options(algorithm: str, options: dict) -> BaseModel:
    if algorithm not in ALGORITHMS:
        raise SpecError(f"algorithm {algorithm!r} is not available; choose one of {', '.join(ALGORITHMS)}")
    model = ALGORITHMS[algorithm][0]
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        allowed = ", ".join(model.model_fields)
        raise SpecError(f"options.{where}: {first['msg']} (options of {algorithm}: {allowed})") from None


def run_search(problem: SearchProblem, algorithm: str, options: dict, *, seed: int) -> SearchResult:
    """Run ``algorithm``; on a resumed store, evaluations already stored are replayed, not redone."""
    opts = algorithm_options(algorithm, options)
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    try:
        ALGORITHMS[algorithm][1](problem, opts, rng)
    except BudgetExhausted:
        pass
    best = best_within_budget(problem)
    top = max((t for _, t, _ in problem.store.items()), default=0)
    ev = None if best is None else problem.store.get(best, top)
    return SearchResult(
        algorithm=algorithm,
        best=None if best is None else problem.space.from_genome(best),
        best_loss=None if ev is None else ev.loss,
        best_latency_ms=None if ev is None else ev.latency_ms,
        evaluations=problem.evaluations,
        stored=len(problem.store),
        seconds=time.monotonic() - started,
    )
