"""A toy search algorithm, in one module: registering it is all it takes for specs and the CLI to know it."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, PositiveInt

from prunesearch.search import SearchProblem, register_algorithm, uniform_start


class GreedyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: PositiveInt = 128


@register_algorithm("toy_greedy", GreedyOptions)
def greedy(problem: SearchProblem, options: GreedyOptions, rng: np.random.Generator) -> np.ndarray:
    """Scores the largest uniform config within the constraints and stops."""
    start = uniform_start(problem)
    problem.evaluate(start, tokens=options.tokens, algorithm="toy_greedy", stage="start")
    return start
