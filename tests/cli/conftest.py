"""Fixtures of the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def remote_table(tmp_path_factory) -> Path:
    """A MiniLM table WE WROTE for a device that is not this machine, so a search against it times nothing:
    for tests about the run store and the CLI, not about latency. Every block removed saves a fixed share."""
    import onnxruntime

    from prunesearch import load_model
    from prunesearch.space import adapter_for
    from tests.oracle.tables import conditions as table_conditions
    from tests.oracle.tables import hand_table

    loaded = load_model("minilm")
    conditions = table_conditions(
        device="a test bench that is not this machine",
        backend_version=onnxruntime.__version__,
        model_hash=loaded.weights_hash,
    )
    costs = {"base": 0.05, "attn": 0.006, "ffn": 0.00009}
    space = adapter_for(loaded.model).space()
    path = tmp_path_factory.mktemp("table") / "t.csv"
    return hand_table(space, conditions, cost=lambda k, s: costs[k] * max(s, 1), dense_ms=20.0).save(path)
