import pytest

from prunesearch.search import load_trials, run_search
from prunesearch.search.executor import make_executor

from .toy import toy_problem

COLUMNS = ["number", "genome", "loss", "latency_ms", "stage", "tokens"]


def _trials(tmp_path, name, executor=None):
    url = f"sqlite:///{tmp_path / (name + '.db')}"
    problem = toy_problem(url, name=name, max_evaluations=40)  # the budget ends mid-batch
    problem.executor = executor
    result = run_search(problem, "supernet", {}, seed=0)
    return result, load_trials(url, name)[COLUMNS]


@pytest.mark.parametrize("kind", ["local", pytest.param("ray", marks=pytest.mark.slow)])
def test_parallel_evaluation_stores_the_same_trials(tmp_path, kind):
    serial_result, serial = _trials(tmp_path, "serial")
    executor = make_executor(kind, workers=2)
    try:
        result, parallel = _trials(tmp_path, kind, executor)
    finally:
        executor.close()
    assert result.best == serial_result.best and result.evaluations == serial_result.evaluations
    assert serial.to_dict("records") == parallel.to_dict("records")
