"""Graphs written for a side-by-side timing."""

import weakref

from torch import nn

from prunesearch._workload import Workload
from prunesearch.oracle import _measure


def test_graphs_are_written_one_built_model_at_a_time(tmp_path, monkeypatch):
    """Each pruned model is built when its graph is written and gone before the next is built."""
    alive: weakref.WeakSet = weakref.WeakSet()
    built = []

    def build() -> nn.Module:
        built.append(len(alive))
        model = nn.Linear(4, 4)
        alive.add(model)
        return model

    monkeypatch.setattr(_measure, "export_for", lambda model, target, workload: target.write_bytes(b"graph"))
    _measure.write_graphs(tmp_path, {"a": build, "b": build, "c": build}, workload=Workload())
    assert built == [0, 0, 0] and not alive
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b.onnx", "c.onnx"]
