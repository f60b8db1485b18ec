"""ensure_table: a stored table (shipped or cached) is used only while whole models measured here now, side by side
with the dense model, cost what it predicts; else a table is profiled here and cached."""

from types import SimpleNamespace

import pytest
from rich.console import Console

from prunesearch import Reporter, Workload
from prunesearch.oracle import Conditions, LatencyTable, check_table, device_slug, ensure_table, profile_table
from prunesearch.oracle import _ensure as ensure_module
from prunesearch.oracle._ensure import CHECK_MODELS, TableCheck
from tests.conftest import FAST
from tests.oracle.test_decode import tiny
from tests.space.tiny import FFN_STEP

WORKLOAD = Workload(seq_len=16)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A tiny BERT, and a table of it measured here, placed where shipped tables live."""
    loaded = tiny("bert", "ensure")
    table = profile_table(
        loaded, Conditions.here(loaded, WORKLOAD, ffn_step=FFN_STEP), calibration_models=2, timing=FAST
    )
    root = tmp_path_factory.mktemp("shipped")
    return loaded, table.save(root / device_slug(table.conditions.device) / table.conditions.file_name()), root


def test_check_measures_whole_models_beside_the_dense_model_now(shipped, fast_timing):
    loaded, path, _ = shipped
    table = LatencyTable.load(path)
    check = check_table(loaded, table, table.conditions)
    assert len(check.errors) == CHECK_MODELS and check.reference_ms > 0
    assert "whole models measured now beside the dense model" in check.describe()


def _checks(monkeypatch, *errors_by_call):
    """check_table answering each call with the next errors (a stand-in: tiny models' timings drive nothing)."""
    answers = iter(errors_by_call)
    calls = []

    def fake(loaded, table, conditions):
        calls.append(table.path)
        return TableCheck(errors=next(answers), reference_ms=1.5)

    monkeypatch.setattr(ensure_module, "check_table", fake)
    return calls


def test_a_shipped_table_that_agrees_is_used_with_the_dense_model_measured_now(shipped, tmp_path, monkeypatch):
    loaded, path, root = shipped
    monkeypatch.setattr(ensure_module, "SHIPPED", root)
    monkeypatch.setenv("PRUNESEARCH_CACHE", str(tmp_path))
    _checks(monkeypatch, (0.01, -0.02, 0.0))
    choice = ensure_table(loaded, WORKLOAD, ffn_step=FFN_STEP)
    assert (choice.path, choice.reference_ms, choice.how) == (path, 1.5, "shipped")


def test_a_stored_table_this_machine_disagrees_with_is_replaced_and_a_cached_one_is_checked_too(
    shipped, tmp_path, monkeypatch
):
    loaded, path, root = shipped
    monkeypatch.setattr(ensure_module, "SHIPPED", root)
    monkeypatch.setenv("PRUNESEARCH_CACHE", str(tmp_path))
    monkeypatch.setattr(ensure_module, "profile_table", lambda *a, **k: profile_table(*a, **{**k, "timing": FAST}))
    calls = _checks(monkeypatch, (0.01, 0.2, 0.0), (0.3, 0.0, 0.0), (0.0, 0.01, 0.0))
    console = Console(record=True, width=400)
    got = ensure_table(
        loaded, WORKLOAD, ffn_step=FFN_STEP, reporter=Reporter(console)
    )  # shipped fails: profiled, cached
    assert got.path.is_relative_to(tmp_path) and got.how == "profiled now"
    assert got.path.name == path.name and LatencyTable.load(got.path).conditions == LatencyTable.load(path).conditions
    assert got.reference_ms == LatencyTable.load(got.path).meta.dense_ms
    text = console.export_text()
    assert "+20.0%" in text and "runs differently" in text
    again = ensure_table(loaded, WORKLOAD, ffn_step=FFN_STEP)  # shipped fails again, the cached table fits
    assert (again.path, again.how) == (got.path, "cached") and calls[-1] == got.path


class _Measured(dict):
    """What time_configs returns, for a stand-in: ratios by name and the dense model's milliseconds."""

    reference_ms = 1.0


def test_the_check_is_never_tighter_than_the_tables_own_calibration_error(shipped, monkeypatch):
    """A decode-step table whose calibration models scatter by 2.4% of the dense model cannot be held to ±3%:
    the tolerance is twice that scatter relative to the lightest check model, and never below ±3%."""
    loaded, path, _ = shipped
    table = LatencyTable.load(path)
    space = ensure_module.adapter_for(loaded.model).space(ffn_step=FFN_STEP)
    configs = ensure_module.calibration_configs(space, CHECK_MODELS, seed=1)
    predicted = [ensure_module.Predictor(table, space).config_ratio(c) for c in configs]
    five_percent_slower = _Measured({f"check-{i}": SimpleNamespace(ratio=p * 1.05) for i, p in enumerate(predicted)})
    monkeypatch.setattr(ensure_module, "time_configs", lambda *args, **kwargs: five_percent_slower)

    table.meta.calibration = table.meta.calibration.model_copy(update={"rms": 0.0})
    tight = check_table(loaded, table, table.conditions)
    assert tight.tolerance == ensure_module.DRIFT_TOLERANCE and not tight.fits
    table.meta.calibration = table.meta.calibration.model_copy(update={"rms": 0.024})
    loose = check_table(loaded, table, table.conditions)
    assert loose.tolerance == pytest.approx(max(0.03, 2 * 0.024 / min(predicted)))
    assert loose.fits == (loose.tolerance >= 0.05)
