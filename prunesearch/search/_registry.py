"""The search algorithms by name, each with the options model its spec's ``options:`` is validated by.

Each module of ``prunesearch.search.algorithms`` registers its algorithms with ``register_algorithm``;
the registry imports the package on first use, so a new algorithm is one new module. A spec's
``algorithm`` and the CLI's help list what is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ValidationError

from prunesearch._registry import Registry
from prunesearch.errors import SpecError

#: algorithm(problem, options, rng) -> the best genome found (or None)
Algorithm = Callable[..., "np.ndarray | None"]


@dataclass(frozen=True)
class Registered:
    options: type[BaseModel]
    run: Algorithm
    #: whether it trades off several objectives (True) or minimises the loss under the constraints (False)
    multi_objective: bool = False


ALGORITHMS: Registry[Registered] = Registry(
    "search algorithm", package="prunesearch.search.algorithms", error=SpecError
)


def register_algorithm(name: str, options: type[BaseModel], *, multi_objective: bool = False):
    """Make ``fn(problem, options, rng)`` the search algorithm ``name`` (a function decorator)."""

    def register(fn: Algorithm) -> Algorithm:
        ALGORITHMS.register(name, Registered(options=options, run=fn, multi_objective=multi_objective))
        return fn

    return register


def algorithm(name: str) -> Registered:
    return ALGORITHMS[name]


def token_budgets(options: BaseModel) -> list[int]:
    """The calibration-token budgets an algorithm's options score on: ``tokens``, or evolution's selection steps."""
    if hasattr(options, "selection"):
        return [tokens for tokens, _ in options.selection]
    return [options.tokens] if hasattr(options, "tokens") else []


def algorithm_options(name: str, options: dict) -> BaseModel:
    model = algorithm(name).options
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SpecError(
            f"options.{where}: {first['msg']} (options of {name}: {', '.join(model.model_fields)})"
        ) from None
