"""`prunesearch demo` end to end on MiniLM, built once: one model load, one table load, one conditions build, from
the spec through the search, its measurement windows, the measured pick, the export, verify and the report.

The device is the toy backend (a model "runs" one microsecond per thousand parameters, tests/extending), and its
table is written by hand from MiniLM's exact parameter counts, so every measurement is quick and what the table
says holds."""

from __future__ import annotations

import json
import sys

import pytest

from prunesearch import Config, Workload, load_model
from prunesearch.cli import main
from prunesearch.oracle import Conditions, LatencyTable
from prunesearch.oracle.profilers import profiler_for
from prunesearch.space import adapter_for
from tests.extending import toy_profiler  # noqa: F401  (registers the toy backend)
from tests.oracle.tables import hand_table

SPEC = """
name: demo-once
model: minilm
calibration: {{tokens: 2048}}
device: {{table: {table}, backend: toy-cpu, threads: 1}}
target: {{speedup: 1.5}}
options: {{generations: 3, offspring: 4, selection: [[1024, 2], [2048, 1]]}}
budget: {{evaluations: 40}}
measure: {{every: 15, configs: 2}}
recovery: {{tokens: 0, reconstruction: {{tokens: 2048}}}}
"""


@pytest.fixture
def toy_table(tmp_path):
    """MiniLM's table on the toy device: each block costs its parameters' share of the dense model's."""
    loaded = load_model("minilm")
    adapter = adapter_for(loaded.model)
    space = adapter.space()
    dense = space.dense()
    total = adapter.param_count(dense)
    base = adapter.param_count(Config.uniform(space.n_layers, heads=0, ffn=0))

    def cost(kind: str, size: int) -> float:
        if kind == "base":
            return base / total
        return (adapter.block_params(0, kind, size) - adapter.block_params(0, kind, 0)) / total

    c = Conditions.here(loaded, Workload(backend="toy-cpu"), ffn_step=128)
    return hand_table(space, c, cost=cost, dense_ms=total * 1e-6).save(tmp_path / "toy.csv")


def test_the_demo_builds_each_piece_once(tmp_path, monkeypatch, capsys, toy_table, fast_timing):
    import prunesearch._models as models

    counts = {"model loads": 0, "table loads": 0, "conditions built": 0}

    def counting(key, fn):
        def wrapper(*args, **kwargs):
            counts[key] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(models, "load_model", counting("model loads", models.load_model))
    monkeypatch.setattr(LatencyTable, "load", classmethod(counting("table loads", LatencyTable.load.__func__)))
    monkeypatch.setattr(Conditions, "here", classmethod(counting("conditions built", Conditions.here.__func__)))
    spec = tmp_path / "demo.yaml"
    spec.write_text(SPEC.format(table=toy_table))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["prunesearch", "demo", "--spec", str(spec), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as done:
        main()
    err = capsys.readouterr().err
    assert done.value.code == 0, err
    assert counts == {"model loads": 1, "table loads": 1, "conditions built": 1}, counts
    manifest = json.loads((tmp_path / "out" / "export" / "export.json").read_text())
    assert 2048 <= manifest["recovery"]["reconstruction"]["tokens"] < 4096  # the spec's refit budget held
    stages = {m["stage"] for m in manifest["measurements"]}
    assert {"check", "search", "pick"} <= stages and manifest["measured"]["speedup_low"] >= 1.5
    chosen = next(c for c in manifest["candidates"] if c["chosen"])
    assert chosen["measured"]["table_ratio"] > 0 and "corrected_ratio" in chosen["measured"]
    report = (tmp_path / "out" / "index.html").read_text()
    assert "Measured beside the dense model" in report and (tmp_path / "out" / "correction.png").is_file()
    assert profiler_for("toy-cpu").at_hand(LatencyTable.load(toy_table).conditions)
