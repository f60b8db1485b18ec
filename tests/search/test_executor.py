import os
import signal
from pathlib import Path

import pytest

from prunesearch.search import load_trials, make_executor, run_search

from .toy import toy_loss, toy_problem

COLUMNS = ["number", "genome", "loss", "latency_ms", "stage", "tokens"]


class DiesOnce:
    """The toy fitness, except that the first call anywhere kills its own worker process (SIGKILL)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __call__(self, config, tokens: int) -> float:
        if not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return toy_loss(config, tokens)


def _trials(tmp_path, name, executor=None, fitness=None):
    url = f"sqlite:///{tmp_path / (name + '.db')}"
    problem = toy_problem(url, name=name, max_evaluations=40)  # the budget ends mid-batch
    problem.executor = executor
    problem.fitness = fitness or problem.fitness
    result = run_search(problem, "supernet", {}, seed=0)
    problem.store.close()
    return result, load_trials(url, name)[COLUMNS]


@pytest.fixture
def executor(request):
    kind = request.param
    if kind == "ray":
        request.getfixturevalue("ray_head")  # tasks run on the test run's Ray cluster (2 workers)
    made = make_executor(kind, workers=2)
    yield made
    made.close()


@pytest.mark.parametrize("executor", ["local", "ray"], indirect=True)
def test_parallel_evaluation_stores_the_same_trials(tmp_path, executor):
    serial_result, serial = _trials(tmp_path, "serial")
    result, parallel = _trials(tmp_path, "parallel", executor)
    assert result.best == serial_result.best and result.evaluations == serial_result.evaluations
    assert serial.to_dict("records") == parallel.to_dict("records")


@pytest.mark.parametrize("executor", ["local", "ray"], indirect=True)
def test_a_worker_killed_mid_task_is_retried_and_nothing_is_lost_or_doubled(tmp_path, executor):
    _, serial = _trials(tmp_path, "serial")
    marker = tmp_path / "killed-once"
    _, parallel = _trials(tmp_path, "parallel", executor, fitness=DiesOnce(marker))
    assert marker.exists()  # a worker did die
    assert serial.to_dict("records") == parallel.to_dict("records")
