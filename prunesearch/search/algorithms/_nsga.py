"""Multi-objective search with NSGA-II (pymoo's, or Optuna's sampler) over the run's objectives: the
loss and any predicted ones (latency, speed-up, energy, parameters, size), on an integer genome."""

from __future__ import annotations

import contextlib

import numpy as np
from pydantic import BaseModel, ConfigDict, PositiveInt
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair as PymooRepair
from pymoo.indicators.hv import HV
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.optimize import minimize

from prunesearch._objectives import OBJECTIVES
from prunesearch._pareto import pareto_mask
from prunesearch.search._operators import Repair
from prunesearch.search._problem import BudgetExhausted, SearchProblem, best_within_budget
from prunesearch.search._registry import register_algorithm


class NSGA2Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    population: PositiveInt = 24
    tokens: PositiveInt = 8192
    #: keep every individual within the constraints (a constrained front) or span the whole space
    constrained: bool = False


class _PruningProblem(Problem):
    def __init__(self, problem: SearchProblem, options: NSGA2Options) -> None:
        upper = problem.space.genome_upper
        super().__init__(n_var=len(upper), n_obj=len(problem.objectives), xl=np.zeros_like(upper), xu=upper, vtype=int)
        self.search = problem
        self.tokens = options.tokens

    def _evaluate(self, x, out, *args, **kwargs):
        genomes = np.rint(x).astype(np.int64)
        losses = self.search.evaluate(genomes, tokens=self.tokens, algorithm="nsga2", stage="population")
        out["F"] = self.search.objective_matrix(genomes, losses)


class _IntoBudget(PymooRepair):
    """Rounds onto the level grid, then (constrained fronts) lowers levels until every constraint holds."""

    def __init__(self, problem: SearchProblem, rng: np.random.Generator, *, constrained: bool) -> None:
        super().__init__()
        self.search = problem
        self.budget_repair = Repair()  # pymoo operators own an attribute named `repair`
        self.rng = rng
        self.constrained = constrained
        self.upper = problem.space.genome_upper

    def _do(self, problem, X, **kwargs):
        X = np.clip(np.rint(X), 0, self.upper).astype(np.int64)
        if self.constrained:
            X = self.budget_repair.do(self.search, X, rng=self.rng)
        return X


@register_algorithm("nsga2", NSGA2Options, multi_objective=True)
def nsga2(problem: SearchProblem, options: NSGA2Options, rng: np.random.Generator) -> np.ndarray:
    """Runs until the evaluation budget; returns the lowest-loss genome meeting the constraints."""
    repair = _IntoBudget(problem, rng, constrained=options.constrained)
    algorithm = NSGA2(
        pop_size=options.population,
        sampling=IntegerRandomSampling(),
        crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
        mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
        repair=repair,
        eliminate_duplicates=True,
    )
    seed = int(rng.integers(0, 2**31 - 1))
    with contextlib.suppress(BudgetExhausted):
        minimize(
            _PruningProblem(problem, options), algorithm, ("n_eval", problem.max_evaluations), seed=seed, verbose=False
        )
    return best_within_budget(problem)


def hypervolume(points: np.ndarray, *, reference) -> float:
    """Hypervolume of the front of ``points`` (n x m, all minimised: ``SearchProblem.objective_matrix``),
    pymoo's indicator, against a reference point worse than all of them."""
    points = np.asarray(points, dtype=float)
    return float(HV(ref_point=np.asarray(reference, dtype=float))(points[pareto_mask(points)]))


@register_algorithm("optuna_nsga2", NSGA2Options, multi_objective=True)
def optuna_nsga2(problem: SearchProblem, options: NSGA2Options, rng: np.random.Generator) -> np.ndarray:
    """The same search with Optuna's NSGAIISampler (ask/tell), until the evaluation budget."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.NSGAIISampler(population_size=options.population, seed=int(rng.integers(0, 2**31 - 1)))
    # an in-memory study drives the sampler; the run store keeps the evaluations
    study = optuna.create_study(directions=[OBJECTIVES[o].direction for o in problem.objectives], sampler=sampler)
    upper = problem.space.genome_upper
    budget = Repair()
    try:
        while True:
            trial = study.ask()
            genome = np.array([trial.suggest_int(f"g{k}", 0, int(u)) for k, u in enumerate(upper)], dtype=np.int64)
            if options.constrained:
                genome = budget.do(problem, genome, rng=rng)[
                    0
                ]  # the sampler learns from the sampled point's objectives
            loss = problem.evaluate(genome, tokens=options.tokens, algorithm="optuna_nsga2", stage="population")[0]
            values = problem.predict(genome, [o for o in problem.objectives if o != "loss"])
            study.tell(trial, [float(loss) if o == "loss" else float(values[o][0]) for o in problem.objectives])
    except BudgetExhausted:
        pass
    return best_within_budget(problem)
