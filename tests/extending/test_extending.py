"""Extending prunesearch: a toy algorithm, a toy profiler and a toy objective each live in one new module of
this folder (toy_algorithm.py, toy_profiler.py, toy_objective.py) and nothing else changes: the spec accepts
them, the CLI lists them, and a search, a table and a constraint use them."""

import sys

import pytest

from prunesearch import Constraint, LoadedModel, Workload, parse_spec
from prunesearch.cli import main
from prunesearch.oracle import Conditions, Predictor, profile_table
from prunesearch.search import run_search
from tests.conftest import FAST
from tests.extending import toy_algorithm, toy_objective, toy_profiler  # noqa: F401  (they register themselves)
from tests.search.toy import toy_problem
from tests.space.tiny import FAMILIES, FFN_STEP

BASE = {"name": "x", "model": "minilm", "target": {"speedup": 2}}


def test_the_spec_accepts_all_three():
    spec = parse_spec(
        {
            **BASE,
            "algorithm": "toy_greedy",
            "device": {"backend": "toy-cpu"},
            "objectives": ["loss", "latency_ms", "heads_kept"],
            "options": {"tokens": 64},
        }
    )
    assert (spec.algorithm, spec.device.backend, spec.objectives[-1]) == ("toy_greedy", "toy-cpu", "heads_kept")


def test_the_toy_algorithm_searches_under_the_toy_objective(tmp_path):
    limits = [Constraint(objective="latency_ms", limit=12.0), Constraint(objective="heads_kept", limit=8)]
    problem = toy_problem(f"sqlite:///{tmp_path / 's.db'}", constraints=limits)
    result = run_search(problem, "toy_greedy", {}, seed=0)
    searched = [t for t in problem.store.study.get_trials() if t.user_attrs["algorithm"] == "toy_greedy"]
    assert len(searched) == 1 and result.best_metrics["heads_kept"] <= 8  # the rest sweep the front around it


def test_the_toy_profiler_measures_a_table_that_predicts_it(tmp_path):
    model = FAMILIES["bert"].model()
    loaded = LoadedModel(name="tiny-bert", model=model, tokenizer=None, source=None, weights_hash="abc")
    workload = Workload(backend="toy-cpu", seq_len=16)
    assert Conditions.here(loaded, workload, ffn_step=FFN_STEP).backend_version == "1.0"
    table = profile_table(
        loaded, Conditions.here(loaded, workload, ffn_step=FFN_STEP), calibration_models=3, timing=FAST
    )
    space = __import__("prunesearch").adapter_for(model).space(ffn_step=FFN_STEP)
    assert Predictor(table, space).dense_ms > 0 and table.conditions.backend == "toy-cpu"


def test_the_cli_lists_all_three(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["prunesearch", "list"])
    monkeypatch.setenv("COLUMNS", "240")  # one line per row, so no name is wrapped
    with pytest.raises(SystemExit) as exit_:
        main()
    listed = capsys.readouterr().err
    assert exit_.value.code == 0
    assert all(name in listed for name in ("toy-cpu", "toy_greedy", "heads_kept"))
