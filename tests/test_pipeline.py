"""pipeline.prepare: a stored run's export predicts and targets with the run's own table."""

import pytest
import yaml

import prunesearch.pipeline as pipeline
from prunesearch.spec import parse_spec
from tests.cli.test_bad_input import SPEC, minilm, table  # noqa: F401  (fixtures)


def test_prepare_with_a_runs_table_does_not_find_one_again(table, monkeypatch):
    """ensure_table may re-profile when this machine drifts: an export must not switch tables mid-run."""
    monkeypatch.setattr(pipeline, "_table", lambda spec, loaded: pytest.fail("a stored run's table was looked up again"))
    spec = parse_spec(yaml.safe_load(SPEC.format(table="auto", extra="")), source="test")
    _, _, _, table_path, predictor, target_ms = pipeline.prepare(spec, table=table)
    assert table_path == table and target_ms == pytest.approx(predictor.dense_ms / 2)
