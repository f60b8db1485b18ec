"""Timing an ONNX graph with ONNX Runtime on the CPU under fixed conditions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# the runner copied into remote-device bundles: the board and this machine time graphs with the same code
from prunesearch.oracle import run_bundle as timing
from prunesearch.oracle.run_bundle import feeds_for, ort_session


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
    """A Measurement of per-run times, in the order they ran (see ``run_bundle.summarise``)."""
    return Measurement(**timing.summarise(times_ms, rounds=rounds))


def time_session(session, feeds: dict, **options) -> Measurement:
    """Repeated runs after warm-up, the quietest of up to 3 attempts kept (see ``run_bundle.time_session``)."""
    return Measurement(**timing.time_session(session, feeds, **options))


def measure_onnx(
    path: str | Path, *, batch: int, seq_len: int, threads: int, vocab: int, cache_len: int = 0, budget_s: float = 1.0,
) -> Measurement:
    """Whole-graph latency (used to build tables, calibrate them, and verify exports); a decode-step
    graph runs with ``cache_len`` tokens of random past keys/values."""
    session = ort_session(path, threads=threads)
    feeds = feeds_for(session, batch=batch, seq_len=seq_len, vocab=vocab, cache_len=cache_len)
    return time_session(session, feeds, budget_s=budget_s)
