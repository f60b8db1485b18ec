"""Timing an ONNX graph with ONNX Runtime on the CPU under fixed conditions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Measurement:
    """``latency_ms`` is the number tables, predictions and verification use: the median of
    the least-disturbed of a few consecutive rounds of runs. Interference on a shared machine
    only ever adds time, and it comes in bursts longer than one run, so the quietest round is
    the device's own speed; the median, p10 and p90 over all runs are kept beside it."""

    latency_ms: float
    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int
    #: (slowest round median / quietest round median) - 1: how disturbed the measurement was
    spread: float = 0.0


def summarise(times_ms, *, rounds: int = 5) -> Measurement:
    """A Measurement of per-run times, in the order they ran. Runs beyond 3 median absolute
    deviations above the median (single preemptions) are dropped before the percentiles."""
    arr = np.asarray(times_ms, dtype=float)
    med = np.median(arr)
    mad = np.median(np.abs(arr - med)) or 1e-9
    kept = arr[arr <= med + 3 * 1.4826 * mad]
    round_medians = [float(np.median(c)) for c in np.array_split(arr, min(rounds, max(1, len(arr) // 4)))]
    return Measurement(
        latency_ms=min(round_medians),
        median_ms=float(np.median(kept)),
        p10_ms=float(np.percentile(kept, 10)),
        p90_ms=float(np.percentile(kept, 90)),
        runs=int(len(arr)),
        spread=max(round_medians) / min(round_medians) - 1,
    )


def ort_session(path: str | Path, *, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_session(
    session, feeds: dict, *, min_runs: int = 20, max_runs: int = 400, budget_s: float = 1.0, warmup: int = 5,
    attempts: int = 3, stable: float = 0.03,
) -> Measurement:
    """Repeated runs after warm-up, summarised by ``summarise``; an attempt stops after
    ``budget_s`` once ``min_runs`` are in. An attempt whose rounds disagree by more than
    ``stable`` was disturbed throughout some rounds: up to ``attempts`` are made and the
    quietest kept, so a burst of load on a shared machine costs time, not accuracy."""
    for _ in range(warmup):
        session.run(None, feeds)
    best = None
    for _ in range(attempts):
        times = []
        start = time.perf_counter()
        while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - start < budget_s):
            t0 = time.perf_counter()
            session.run(None, feeds)
            times.append((time.perf_counter() - t0) * 1e3)
        m = summarise(times)
        best = m if best is None or m.latency_ms < best.latency_ms else best
        if m.spread <= stable:
            break
    return best


def feeds_for(session, *, batch: int, seq_len: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in session.get_inputs():
        if inp.name == "input_ids":
            feeds[inp.name] = rng.integers(3, vocab, size=(batch, seq_len), dtype=np.int64)
        else:  # attention_mask, token_type_ids
            value = 1 if inp.name == "attention_mask" else 0
            feeds[inp.name] = np.full((batch, seq_len), value, dtype=np.int64)
    return feeds


def measure_onnx(path: str | Path, *, batch: int, seq_len: int, threads: int, vocab: int, budget_s: float = 1.0) -> Measurement:
    """Whole-graph latency (used to build tables, calibrate them, and verify exports)."""
    session = ort_session(path, threads=threads)
    return time_session(session, feeds_for(session, batch=batch, seq_len=seq_len, vocab=vocab), budget_s=budget_s)
