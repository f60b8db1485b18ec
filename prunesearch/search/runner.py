"""Run one algorithm on a problem: options validated, seeded, budget-bounded, resumable."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np

from prunesearch.config import Config
from prunesearch.search.problem import BudgetExhausted, SearchProblem, best_within_budget
from prunesearch.search.registry import algorithm, algorithm_options


@dataclass(frozen=True)
class SearchResult:
    algorithm: str
    best: Config | None
    best_loss: float | None
    #: the best config's predicted objectives (objectives.py names)
    best_metrics: dict[str, float] | None
    evaluations: int  # evaluations the algorithm asked for (replayed ones included)
    stored: int  # trials in the study at the end
    seconds: float


def run_search(problem: SearchProblem, name: str, options: dict, *, seed: int) -> SearchResult:
    """Run algorithm ``name``; on a resumed store, evaluations already stored are replayed, not redone."""
    opts = algorithm_options(name, options)
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    with contextlib.suppress(BudgetExhausted):
        algorithm(name).run(problem, opts, rng)
    best = best_within_budget(problem)
    top = max((t for _, t, _ in problem.store.items()), default=0)
    ev = None if best is None else problem.store.get(best, top)
    return SearchResult(
        algorithm=name,
        best=None if best is None else problem.space.from_genome(best),
        best_loss=None if ev is None else ev.loss,
        best_metrics=None if ev is None else dict(ev.metrics),
        evaluations=problem.evaluations,
        stored=len(problem.store),
        seconds=time.monotonic() - started,
    )
