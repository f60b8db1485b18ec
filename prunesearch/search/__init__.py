"""Search algorithms over the Config genome, and the resumable run store."""

from prunesearch.search.algorithms.evolution import EvolutionOptions, evolve
from prunesearch.search.algorithms.nsga import NSGA2Options, hypervolume, nsga2, optuna_nsga2
from prunesearch.search.algorithms.policy_gradient import PolicyGradientOptions, policy_gradient
from prunesearch.search.algorithms.random_search import RandomOptions, random_search
from prunesearch.search.algorithms.supernet import SupernetOptions, supernet
from prunesearch.search.loop import MeasurementLoop
from prunesearch.search.operators import (
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
from prunesearch.search.problem import Budget, BudgetExhausted, SearchProblem, best_within_budget
from prunesearch.search.registry import ALGORITHMS, algorithm_options, register_algorithm
from prunesearch.search.runner import SearchResult, run_search
from prunesearch.search.store import Evaluation, RunStore, load_trials, study_attrs

__all__ = [
    "ALGORITHMS",
    "Budget",
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
    "hypervolume",
    "load_trials",
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
