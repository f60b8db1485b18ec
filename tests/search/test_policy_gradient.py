import numpy as np

from prunesearch.search import PolicyGradientOptions, policy_gradient, run_search

from .toy import IMPORTANCE, toy_problem

OPTIONS = dict(iterations=25, samples=8)


def test_reinforce_moves_probabilities_toward_important_layers(tmp_path):
    problem = toy_problem(f"sqlite:///{tmp_path / 's.db'}", max_evaluations=1000)
    genome = policy_gradient(problem, PolicyGradientOptions(**OPTIONS), np.random.default_rng(0))
    assert problem.feasible(genome)[0]
    mean_p = np.array([p.mean() for p in problem.policy_probabilities]).reshape(4, 2).mean(1)
    # every unit started at 0.5: the most important layers rise, the least important falls
    assert mean_p[np.argmax(IMPORTANCE)] > 0.5
    assert mean_p[np.argmin(IMPORTANCE)] < 0.5
    assert mean_p[0] > mean_p[2] and mean_p[3] > mean_p[2]
    levels = genome.reshape(4, 2).sum(1)
    assert levels[0] >= levels[2] and levels[3] >= levels[2]


def test_policy_gradient_is_seeded_and_in_budget(tmp_path):
    results = [
        run_search(
            toy_problem(f"sqlite:///{tmp_path / f's{i}.db'}", max_evaluations=1000),
            "policy_gradient",
            {"iterations": 6, "samples": 6},
            seed=3,
        )
        for i in range(2)
    ]
    assert results[0].best == results[1].best and results[0].best_loss == results[1].best_loss
    assert results[0].best_metrics["latency_ms"] <= 7.0


def test_importance_starts_concentrated_layers_with_fewer_kept_groups(tmp_path):
    """Layer 0's attention importance sits in one head, layer 1's is spread: layer 0's tail heads
    start least likely kept, layer 1's spread heads in between, and every probability in 0.2..0.8."""
    from prunesearch.search.algorithms._policy_gradient import _initial_logits

    problem = toy_problem(f"sqlite:///{tmp_path / 's.db'}")
    concentrated, spread = np.array([0.85, 0.05, 0.05, 0.05]), np.full(4, 0.25)
    problem.unit_importance = [concentrated] + [spread] * 7  # entries alternate attn, ffn per layer
    probs = [1 / (1 + np.exp(-t)) for t in _initial_logits(problem)]
    assert all(((p >= 0.2 - 1e-9) & (p <= 0.8 + 1e-9)).all() for p in probs)
    assert probs[0][0] == max(p.max() for p in probs[0::2])  # the dominant head ranks first among heads
    assert probs[0][1:].max() < probs[2].min()  # its layer's tail ranks below every spread head
    problem.unit_importance = None
    assert all(np.allclose(1 / (1 + np.exp(-t)), 0.5) for t in _initial_logits(problem))


def test_a_hard_target_and_a_small_budget_still_end_with_a_config_in_budget(tmp_path):
    """At 4x (3 ms of the dense 13 ms) units starting near 0.5 would sample nothing feasible, and 30
    iterations of 8 samples overrun 20 evaluations: the start is shifted onto the budget and the last
    evaluation is kept for the deterministic config."""
    from prunesearch.search.algorithms._policy_gradient import _fit_to_budget, _initial_logits

    problem = toy_problem(f"sqlite:///{tmp_path / 's.db'}", target_ms=3.0, max_evaluations=20)
    start = [1 / (1 + np.exp(-t)) for t in _fit_to_budget(problem, _initial_logits(problem))]
    assert problem.feasible(np.array([np.rint(p.sum()) for p in start], dtype=np.int64))[0]
    result = run_search(problem, "policy_gradient", {"iterations": 30, "samples": 8}, seed=0)
    assert result.best is not None and result.best_metrics["latency_ms"] <= 3.0
    assert problem.evaluations <= 20
