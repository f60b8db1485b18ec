"""DarwinLM/EvoPress-style evolution under the search's constraints (a measured-latency budget first).

Each generation mutates the parent into offspring by level switches, then
selects in steps on progressively more calibration tokens with fewer survivors
each step; the best survivor (or the parent, by elitism) becomes the next parent.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from prunesearch.search._operators import LevelSwitchMutation, scaled_into, uniform_start
from prunesearch.search._problem import SearchProblem
from prunesearch.search._registry import register_algorithm


class EvolutionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    generations: PositiveInt = 30
    offspring: PositiveInt = 16
    #: (calibration tokens, survivors) per selection step; tokens grow, survivors shrink
    selection: tuple[tuple[PositiveInt, PositiveInt], ...] = ((2048, 4), (8192, 1))
    #: share of mutation moves that remove a whole block or layer (0: width moves only), here and in the front
    #: sweep after the search
    removal: float = Field(default=LevelSwitchMutation.REMOVAL, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _steps(self) -> EvolutionOptions:
        tokens = [t for t, _ in self.selection]
        survivors = [s for _, s in self.selection]
        if tokens != sorted(tokens) or survivors != sorted(survivors, reverse=True) or survivors[-1] != 1:
            raise ValueError("selection steps need growing tokens and shrinking survivors ending at 1")
        return self


@register_algorithm("evolution", EvolutionOptions)
def evolve(problem: SearchProblem, options: EvolutionOptions, rng: np.random.Generator) -> np.ndarray:
    """Returns the best genome found (always within the constraints)."""
    mutate = LevelSwitchMutation(removal=options.removal)
    final_tokens = options.selection[-1][0]
    parent = uniform_start(problem)
    parent_loss = problem.evaluate(parent, tokens=final_tokens, algorithm="evolution", stage="start")[0]
    for generation in range(options.generations):
        if not problem.feasible(parent)[0]:  # measured configs corrected the oracle past the parent: rescale it
            parent = scaled_into(problem, parent)
            parent_loss = problem.evaluate(
                parent, tokens=final_tokens, algorithm="evolution", stage=f"gen{generation}-rescaled"
            )[0]
        offspring = mutate.do(problem, np.repeat(parent[None], options.offspring, axis=0), rng=rng)
        pool = _unique(list(offspring), exclude=parent)
        for step, (tokens, survivors) in enumerate(options.selection):
            losses = problem.evaluate(
                np.array(pool), tokens=tokens, algorithm="evolution", stage=f"gen{generation}-step{step}"
            )
            pool = [pool[i] for i in np.argsort(losses, kind="stable")[:survivors]]
        best_loss = losses[np.argsort(losses, kind="stable")[0]] if pool else np.inf
        if best_loss < parent_loss:  # elitism: the parent survives unless beaten on the same tokens
            parent, parent_loss = pool[0], best_loss
    return parent


def _unique(genomes: list[np.ndarray], *, exclude: np.ndarray) -> list[np.ndarray]:
    seen = {tuple(exclude)}
    out = []
    for g in genomes:
        if tuple(g) not in seen:
            seen.add(tuple(g))
            out.append(g)
    return out
