"""Latency tables WE WROTE by hand (costs as fractions of the dense model), for code paths, not claims."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from prunesearch.oracle import Conditions, LatencyTable, TableMeta
from prunesearch.oracle._table import COLUMNS, ENERGY
from prunesearch.space import Space


def conditions(**fields) -> Conditions:
    """Conditions of a text-model table: ONNX Runtime CPU, fp32, batch 1, 128 tokens, 1 thread, FFN step 128;
    ``fields`` set the device, the model and whatever else a test is about."""
    defaults = {
        "backend": "ort-cpu",
        "backend_version": "1.0",
        "threads": 1,
        "batch": 1,
        "seq_len": 128,
        "phase": "encode",
        "inputs": "tokens",
        "model": "minilm",
        "model_hash": "abc",
        "ffn_step": 128,
    }
    return Conditions(**(defaults | fields))


def hand_table(
    space: Space,
    conditions: Conditions,
    *,
    cost: Callable[[str, int], float],
    energy: Callable[[str, int], float] | None = None,
    dense_ms: float = 10.0,
) -> LatencyTable:
    layer = space.layers[0]
    keys = [("base", 0)] + [("attn", h) for h in layer.heads[1:]] + [("ffn", w) for w in layer.ffn[1:]]
    rows = [
        {"kind": k, "size": s, "cost": cost(k, s), "se": 0.0, "measured": cost(k, s), "measured_se": 0.0, "rounds": 8}
        for k, s in keys
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if energy is not None:
        frame[ENERGY] = [energy(k, s) for k, s in keys]
    meta = TableMeta(
        conditions=conditions,
        n_layers=space.n_layers,
        profiled_at="test",
        profiling_seconds=0.0,
        dense_ms=dense_ms,
        dense_p10_ms=dense_ms,
        dense_p90_ms=dense_ms,
        notes="written by hand for a test",
    )
    return LatencyTable(frame, meta)
