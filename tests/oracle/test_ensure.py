"""ensure_table: a shipped table is trusted only while this machine still runs the dense model as it says."""

import pytest
from rich.console import Console

from prunesearch.oracle import LatencyTable, Predictor, ensure_table, profile_table
from prunesearch.oracle import ensure as ensure_module
from prunesearch.oracle.conditions import device_slug
from prunesearch.oracle.ensure import dense_drift, table_name
from prunesearch.space import adapter_for
from tests.oracle.test_decode import SHAPE, tiny


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A tiny BERT, and a table of it measured here, placed where shipped tables live."""
    loaded = tiny("bert", "ensure")
    table = profile_table(loaded, seq_len=16, calibration_models=2, budget_s=0.2, **SHAPE)
    root = tmp_path_factory.mktemp("shipped")
    name = table_name(loaded.name, backend="ort-cpu", batch=1, seq_len=16, threads=1)
    return loaded, table.save(root / device_slug(table.conditions.device) / name), root


def test_dense_drift_compares_the_dense_model_measured_with_the_table_and_now(shipped, tmp_path):
    loaded, path, _ = shipped
    table = LatencyTable.load(path)
    then, now = dense_drift(loaded, path, table.conditions)
    assert then == table.meta.dense_ms and then > 0 and now > 0
    # a table profiled before tables kept the dense measurement: its prediction stands in
    table.meta.dense_ms = None
    older = table.save(tmp_path / path.name)
    space = adapter_for(loaded.model).space(ffn_step=table.conditions.ffn_step)
    assert dense_drift(loaded, older, table.conditions)[0] == Predictor(table, space).dense_ms


def test_a_shipped_table_that_agrees_is_used(shipped, tmp_path, monkeypatch):
    loaded, path, root = shipped
    monkeypatch.setattr(ensure_module, "SHIPPED", root)
    monkeypatch.setattr(ensure_module, "dense_drift", lambda *a: (1.0, 1.02))
    monkeypatch.setenv("PRUNESEARCH_CACHE", str(tmp_path))
    assert ensure_table(loaded, seq_len=16, **SHAPE) == path


def test_a_shipped_table_this_machine_disagrees_with_is_replaced_by_a_local_profile(shipped, tmp_path, monkeypatch):
    loaded, path, root = shipped
    monkeypatch.setattr(ensure_module, "SHIPPED", root)
    monkeypatch.setattr(ensure_module, "dense_drift", lambda *a: (1.0, 1.2))
    monkeypatch.setenv("PRUNESEARCH_CACHE", str(tmp_path))
    console = Console(record=True, width=400)
    got = ensure_table(loaded, seq_len=16, console=console, **SHAPE)
    assert got.is_relative_to(tmp_path) and got.name == path.name
    assert LatencyTable.load(got).conditions == LatencyTable.load(path).conditions
    text = console.export_text()
    assert "+20.0%" in text and "runs differently" in text
    # the local table is used from then on, without another measurement
    monkeypatch.setattr(ensure_module, "dense_drift", lambda *a: pytest.fail("a local table needs no drift check"))
    monkeypatch.setattr(ensure_module, "SHIPPED", tmp_path / "nothing shipped")
    assert ensure_table(loaded, seq_len=16, **SHAPE) == got
