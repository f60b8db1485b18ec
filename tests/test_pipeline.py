"""pipeline.prepare: one model, one table, one oracle and budget; a stored run's export predicts and targets with
the run's own table and dense time."""

import numpy as np
import pytest
import yaml

import prunesearch._pipeline as pipeline
from prunesearch import parse_spec
from prunesearch.oracle import LatencyTable, TableChoice
from tests.cli.test_bad_input import SPEC, minilm, table  # noqa: F401  (fixtures)


def test_prepare_with_a_runs_table_does_not_find_one_again(table, monkeypatch):
    """ensure_table may re-profile when this machine changes: an export must not switch tables mid-run."""
    monkeypatch.setattr(pipeline, "ensure_table", lambda *a, **k: pytest.fail("a stored run's table was looked up"))
    spec = parse_spec(yaml.safe_load(SPEC.format(table="auto", extra="")), source="test")
    stored = TableChoice(table=LatencyTable.load(table), reference_ms=30.0, how="the run's")
    prepared = pipeline.prepare(spec, table=stored)
    assert prepared.choice.path == table and prepared.reference_ms == 30.0
    assert [c.describe() for c in prepared.constraints] == ["speedup >= 2.000x"]
    assert prepared.oracle.measurements == []  # a stored run's table is not checked again


def test_milliseconds_are_ratios_times_the_dense_model_measured_now(table, monkeypatch):
    spec = parse_spec(yaml.safe_load(SPEC.format(table="auto", extra="")), source="test")
    monkeypatch.setattr(
        pipeline,
        "ensure_table",
        lambda *a, **k: TableChoice(table=LatencyTable.load(table), reference_ms=24.0, how="cached"),
    )
    prepared = pipeline.prepare(spec)
    genome = np.zeros((1, 12), dtype=np.int64)
    ratio = prepared.oracle.ratio(genome)[0]
    values = prepared.metrics.of(["latency_ms", "speedup", "params"], genome)
    assert values["latency_ms"][0] == pytest.approx(24.0 * ratio) and values["speedup"][0] == pytest.approx(1 / ratio)
    assert values["params"][0] == prepared.adapter.param_count(prepared.space.from_genome(genome[0]))
