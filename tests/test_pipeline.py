"""pipeline.prepare: a stored run's export predicts and targets with the run's own table and dense time."""

import pytest
import yaml

import prunesearch.pipeline as pipeline
from prunesearch.oracle import TableChoice
from prunesearch.spec import parse_spec
from tests.cli.test_bad_input import SPEC, minilm, table  # noqa: F401  (fixtures)


def test_prepare_with_a_runs_table_does_not_find_one_again(table, monkeypatch):
    """ensure_table may re-profile when this machine changes: an export must not switch tables mid-run."""
    monkeypatch.setattr(pipeline, "choose_table", lambda *a, **k: pytest.fail("a stored run's table was looked up again"))
    spec = parse_spec(yaml.safe_load(SPEC.format(table="auto", extra="")), source="test")
    prepared = pipeline.prepare(spec, table=TableChoice(path=table, reference_ms=30.0, how="the run's"))
    assert prepared.table.path == table and prepared.predictor.reference_ms == 30.0
    assert prepared.target.latency_ms == pytest.approx(15.0) and prepared.target.speedup == 2


def test_a_speedup_target_is_the_dense_time_measured_now_over_the_speedup(table, monkeypatch):
    spec = parse_spec(yaml.safe_load(SPEC.format(table=table, extra="")), source="test")
    monkeypatch.setattr(pipeline, "choose_table", lambda *a, **k: TableChoice(path=table, reference_ms=24.0, how="given"))
    prepared = pipeline.prepare(spec)
    assert prepared.target.latency_ms == pytest.approx(12.0) and prepared.target.reference_ms == 24.0
    assert prepared.target.budget_ms == pytest.approx(12.0 * (1 - spec.target.margin))
