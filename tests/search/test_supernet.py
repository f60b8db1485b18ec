import numpy as np

from prunesearch import Config, Constraint
from prunesearch.search import Budget, RunStore, SearchProblem, run_search

from .toy import SPACE, toy_metrics, toy_problem

# The budget forces pruning in layers 0-2; layer 3 adds little error of its own but amplifies
# what reaches it. On the dense state (no upstream error) layer 3 looks free to prune.
OWN = np.array([0.5, 0.5, 0.5, 0.05])
AMPLIFY = np.array([0.0, 0.0, 0.0, 6.0])


def compounding_loss(config: Config, tokens: int) -> float:
    err = 0.0
    for i, layer in enumerate(config.layers):
        for pruned in (1 - layer.heads / 4, 1 - layer.ffn / 512):
            err = err * (1 + AMPLIFY[i] * pruned) + OWN[i] * pruned
    return err


def _problem(tmp_path, name):
    return SearchProblem(
        space=SPACE,
        fitness=compounding_loss,
        budget=Budget(toy_metrics(), [Constraint(objective="latency_ms", limit=7.0)]),
        store=RunStore.open(f"sqlite:///{tmp_path / (name + '.db')}", name, resume=False),
        max_evaluations=500,
    )


def test_expected_upstream_state_beats_dense_scoring(tmp_path):
    results = {
        acc: run_search(_problem(tmp_path, str(acc)), "supernet", {"accumulate": acc}, seed=0) for acc in (True, False)
    }
    for r in results.values():
        assert r.best_metrics["latency_ms"] <= 7.0
    assert results[True].best_loss < results[False].best_loss


def test_supernet_keeps_important_layers_on_toy(tmp_path):
    result = run_search(
        toy_problem(f"sqlite:///{tmp_path / 't.db'}", max_evaluations=500), "supernet", {"rounds": 2}, seed=0
    )
    assert result.best_metrics["latency_ms"] <= 7.0
    kept = np.array([l.heads / 4 + l.ffn / 512 for l in result.best.layers])
    assert kept[0] >= kept[2] and kept[3] >= kept[2]
