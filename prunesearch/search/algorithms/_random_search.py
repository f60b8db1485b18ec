"""Random search: the baseline every algorithm must beat at the same number of evaluations."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, PositiveInt

from prunesearch.search._operators import RandomSampling
from prunesearch.search._problem import SearchProblem
from prunesearch.search._registry import register_algorithm


class RandomOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    samples: PositiveInt = 200
    tokens: PositiveInt = 8192


@register_algorithm("random", RandomOptions)
def random_search(problem: SearchProblem, options: RandomOptions, rng: np.random.Generator) -> np.ndarray:
    sampler = RandomSampling()
    blank = np.zeros((1, len(problem.space.genome_upper)), dtype=np.int64)
    best, best_loss = None, np.inf
    for _ in range(options.samples):
        genome = sampler.do(problem, blank, rng=rng)[0]
        loss = problem.evaluate(genome, tokens=options.tokens, algorithm="random", stage="sample")[0]
        if loss < best_loss:
            best, best_loss = genome, loss
    return best
