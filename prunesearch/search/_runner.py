"""Run one algorithm on a problem: options validated, seeded, budget-bounded, resumable."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np

from prunesearch._config import Config
from prunesearch.search._front import rung_limits, sweep_front, sweep_size
from prunesearch.search._operators import LevelSwitchMutation
from prunesearch.search._problem import BudgetExhausted, SearchProblem, best_within_budget
from prunesearch.search._registry import algorithm, algorithm_options, token_budgets


@dataclass(frozen=True)
class SearchResult:
    algorithm: str
    best: Config | None
    best_loss: float | None
    #: the best config's predicted objectives (_objectives.py names)
    best_metrics: dict[str, float] | None
    evaluations: int  # evaluations the algorithm asked for (replayed ones included)
    stored: int  # trials in the study at the end
    seconds: float


def run_search(problem: SearchProblem, name: str, options: dict, *, seed: int) -> SearchResult:
    """Run algorithm ``name``; on a resumed store, evaluations already stored are replayed, not redone.

    With measurement in the loop, the search's best candidates are measured once more when it ends. A search
    for the loss under a timing constraint then sweeps the front around its best config (search/_front.py),
    from evaluations the algorithm leaves for it."""
    registered = algorithm(name)
    opts = algorithm_options(name, options)
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    sweep = not registered.multi_objective and bool(rung_limits(problem))
    total = problem.max_evaluations
    if sweep:
        problem.max_evaluations = max(1, total - sweep_size())
    with contextlib.suppress(BudgetExhausted):
        registered.run(problem, opts, rng)
    problem.max_evaluations = total
    loop, problem.loop = problem.loop, None  # the sweep is priced by the correction the search ended with
    if loop is not None:
        loop.run(problem, final=True)
    best = best_within_budget(problem)
    if sweep and best is not None:
        with contextlib.suppress(BudgetExhausted):
            sweep_front(
                problem,
                best,
                tokens=max(token_budgets(opts), default=0) or _top_tokens(problem),
                rng=rng,
                removal=getattr(opts, "removal", LevelSwitchMutation.REMOVAL),  # evolution's option
            )
        best = best_within_budget(problem)
    problem.loop = loop
    top = _top_tokens(problem)
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


def _top_tokens(problem: SearchProblem) -> int:
    return max((t for _, t, _ in problem.store.items()), default=0)
