"""Search algorithms over the Config genome, and the resumable run store."""

from prunesearch.search._executor import make_executor
from prunesearch.search._fitness import DistillationFitness, fitness_device
from prunesearch.search._loop import MeasurementLoop
from prunesearch.search._operators import (
    Fill,
    LevelSwitchMutation,
    Operator,
    RandomSampling,
    Repair,
    filled,
    scaled_into,
    uniform_genome,
    uniform_start,
)
from prunesearch.search._problem import Budget, BudgetExhausted, SearchProblem, best_within_budget
from prunesearch.search._registry import ALGORITHMS, algorithm_options, register_algorithm
from prunesearch.search._runner import SearchResult, run_search
from prunesearch.search._store import Evaluation, RunStore, load_trials, study_attrs
from prunesearch.search.algorithms._evolution import EvolutionOptions, evolve
from prunesearch.search.algorithms._nsga import NSGA2Options, hypervolume, nsga2, optuna_nsga2
from prunesearch.search.algorithms._policy_gradient import PolicyGradientOptions, policy_gradient
from prunesearch.search.algorithms._random_search import RandomOptions, random_search
from prunesearch.search.algorithms._supernet import SupernetOptions, supernet

__all__ = [
    "ALGORITHMS",
    "Budget",
    "DistillationFitness",
    "BudgetExhausted",
    "Evaluation",
    "EvolutionOptions",
    "Fill",
    "LevelSwitchMutation",
    "MeasurementLoop",
    "NSGA2Options",
    "Operator",
    "PolicyGradientOptions",
    "RandomOptions",
    "RandomSampling",
    "Repair",
    "RunStore",
    "SearchProblem",
    "SearchResult",
    "SupernetOptions",
    "algorithm_options",
    "best_within_budget",
    "evolve",
    "filled",
    "fitness_device",
    "hypervolume",
    "load_trials",
    "make_executor",
    "nsga2",
    "optuna_nsga2",
    "policy_gradient",
    "random_search",
    "register_algorithm",
    "run_search",
    "scaled_into",
    "study_attrs",
    "supernet",
    "uniform_genome",
    "uniform_start",
]
