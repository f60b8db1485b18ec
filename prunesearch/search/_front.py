"""The front around a searched config: the same allocation swept from near the dense model to well past the
target, so a user sees the whole trade-off and the export has candidates beyond the target to measure.

A search under a constraint spends its evaluations next to the limit, so its evaluated configs cover a sliver
of the front (a 1% band at the target). After it, the best config's allocation is scaled (``scaled_into``) to
a ladder of limits, each rung evaluated with a few mutants at that limit: the rungs below the target show what
a looser budget would keep, the rungs beyond it are what the export's measured pick falls back on.
"""

from __future__ import annotations

import numpy as np

from prunesearch._objectives import Constraint
from prunesearch.search._operators import LevelSwitchMutation, scaled_into
from prunesearch.search._problem import SearchProblem

#: rungs as multiples of the target's speed-up (limits of a minimised objective are divided by them)
RUNGS = (0.6, 0.75, 0.9, 1.03, 1.07, 1.12, 1.2)
#: mutants evaluated at each rung besides the scaled config itself
MUTANTS = 2
#: a rung must stay this much faster than the dense model to be worth a config
SLOWEST = 1.05


def sweep_size() -> int:
    """Evaluations a sweep may take: the budget an algorithm leaves for it."""
    return len(RUNGS) * (1 + MUTANTS)


def rung_limits(problem: SearchProblem) -> list[list[Constraint]]:
    """Each rung's constraints: the first timing constraint (speed-up, latency, energy) scaled, the others kept;
    none when the search has no timing constraint."""
    timed = [c for c in problem.constraints if not c.of.exact]
    if not timed:
        return []
    first = timed[0]
    rungs = []
    for r in RUNGS:
        limit = first.limit * r if first.of.direction == "maximize" else first.limit / r
        if first.objective == "speedup" and limit < SLOWEST:
            continue
        rungs.append([first.model_copy(update={"limit": limit}) if c is first else c for c in problem.constraints])
    return rungs


def sweep_front(
    problem: SearchProblem,
    genome: np.ndarray,
    *,
    tokens: int,
    rng: np.random.Generator,
    removal: float = LevelSwitchMutation.REMOVAL,
) -> None:
    """Evaluate ``genome``'s allocation scaled to every rung, and ``MUTANTS`` mutants of it there (``removal``: the
    mutation's share of block and layer removals)."""
    mutate = LevelSwitchMutation(removal=removal)
    for i, limits in enumerate(rung_limits(problem)):
        with problem.budget.held_to(limits):
            start = scaled_into(problem, genome)
            pool = np.unique(
                np.vstack([start, mutate.do(problem, np.repeat(start[None], MUTANTS, 0), rng=rng)]), axis=0
            )
            problem.evaluate(pool, tokens=tokens, algorithm="front", stage=f"rung{i}")
