"""Search algorithms over the Config genome, and the resumable run store."""

from prunesearch.search.evolution import EvolutionOptions, evolve
from prunesearch.search.nsga import NSGA2Options, hypervolume, nsga2, optuna_nsga2
from prunesearch.search.policy_gradient import PolicyGradientOptions, policy_gradient
from prunesearch.search.operators import Fill, LevelSwitchMutation, RandomSampling, Repair, uniform_genome, uniform_start
from prunesearch.search.problem import BudgetExhausted, SearchProblem, best_within_budget
from prunesearch.search.random_search import RandomOptions, random_search
from prunesearch.search.runner import ALGORITHMS, SearchResult, algorithm_options, run_search
from prunesearch.search.supernet import SupernetOptions, supernet
from prunesearch.search.store import Evaluation, RunStore, load_trials, study_attrs

__all__ = [
    "ALGORITHMS",
    "BudgetExhausted",
    "Evaluation",
    "EvolutionOptions",
    "Fill",
    "LevelSwitchMutation",
    "NSGA2Options",
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
    "hypervolume",
    "load_trials",
    "nsga2",
    "optuna_nsga2",
    "policy_gradient",
    "random_search",
    "run_search",
    "study_attrs",
    "supernet",
    "uniform_genome",
    "uniform_start",
]
