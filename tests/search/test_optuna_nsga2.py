from prunesearch import pareto_mask
from prunesearch.search import load_trials, run_search

from .toy import toy_problem


def test_optuna_nsga2_fills_the_front_and_respects_the_budget(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    result = run_search(
        toy_problem(url, max_evaluations=60), "optuna_nsga2", {"population": 12, "constrained": True}, seed=0
    )
    trials = load_trials(url, "toy")
    assert len(trials) > 1 and result.best_metrics["latency_ms"] <= 7.0
    assert (trials.latency_ms <= 7.0).all()
    front = trials[pareto_mask(trials[["loss", "latency_ms"]].to_numpy())]
    assert result.best_loss == front[front.latency_ms <= 7.0].loss.min()
