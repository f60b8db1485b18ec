"""benchmarks/gpu_check.py, the one prepared GPU check, run on this CPU against its fake device layer: every
step must go through, so that the minutes a GPU is lent are spent measuring, not debugging."""

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_step_runs_against_the_fake_device(tmp_path, fast_timing):
    results = _gpu_check().main(["--fake", "--out", str(tmp_path)])
    failed = {name: r.get("error") for name, r in results.items() if not r["ok"]}
    assert not failed, failed
    assert set(results) == {"environment", "tables", "oracle_accuracy", "search_export_verify"}
    tables = [t for t in results["tables"].values() if isinstance(t, dict)]
    assert tables
    for table in tables:  # every table measured energy through the meter
        assert "energy_mj" in pd.read_csv(table["table"], comment="#").columns
    assert results["search_export_verify"]["predicted energy_mj"] > 0
    # the fake layer's small refit budget (whole batches of rows: it may pass 2,048 by part of one)
    assert 2048 <= results["search_export_verify"]["refit tokens"] < 4096
    assert json.loads((tmp_path / "summary.json").read_text()) == results
    assert "none of them is a GPU figure" in (tmp_path / "summary.md").read_text()
