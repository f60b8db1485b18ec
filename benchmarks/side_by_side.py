#!/usr/bin/env python3
"""An independent timer: speed-ups of ONNX models over a dense one, measured with nothing of prunesearch.

Each measurement is a fresh Python process running a plain ONNX Runtime session (1 intra-op and 1
inter-op thread unless --threads, ORT_ENABLE_ALL, input ids of the full sequence, a mask of ones (a
decode-step graph, with --cache-len: --seq new tokens after that many in a cache of random keys and values),
20 warm-up runs, the median of --runs timed runs), as a user would time a model. The dense model
and each model are measured alternately, dense first, in --pairs pairs; a pair's speed-up is
dense / model, and the result is the median over pairs, with the pairs' range.

    python benchmarks/side_by_side.py dense.onnx pruned.onnx [more.onnx ...] [--pairs 5] [--runs 100] [--json]
    python benchmarks/side_by_side.py dense.onnx pruned.onnx --seq 1 --cache-len 256   # decode steps

Only the standard library, numpy and onnxruntime are imported, so the timing shares no code with
the timer it checks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import sys, time
import numpy as np
import onnxruntime as ort

path, seq, batch, threads, runs, cache = sys.argv[1], *map(int, sys.argv[2:7])
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
feeds = {}
for i in session.get_inputs():
    if i.name == "input_ids":
        feeds[i.name] = rng.integers(1000, 20000, size=(batch, seq), dtype=np.int64)
    elif i.name == "attention_mask":
        feeds[i.name] = np.ones((batch, cache + seq), dtype=np.int64)
    elif i.name == "position_ids":
        feeds[i.name] = np.broadcast_to(np.arange(cache, cache + seq), (batch, seq)).copy()
    elif i.name.startswith("past."):  # a decode step's cache: (batch, heads, cache, head_dim)
        feeds[i.name] = rng.standard_normal((batch, i.shape[1], cache, i.shape[3])).astype(np.float32)
    else:
        feeds[i.name] = np.zeros((batch, seq), dtype=np.int64)
for _ in range(20):
    session.run(None, feeds)
times = []
for _ in range(runs):
    t0 = time.perf_counter()
    session.run(None, feeds)
    times.append(time.perf_counter() - t0)
print(float(np.median(times)) * 1e3)
"""


def median_ms(path: str, *, seq: int, batch: int, threads: int, runs: int, cache: int = 0) -> float:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, path, str(seq), str(batch), str(threads), str(runs), str(cache)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


def side_by_side(
    dense: str,
    models: list[str],
    *,
    pairs: int = 5,
    runs: int = 100,
    seq: int = 128,
    batch: int = 1,
    threads: int = 1,
    cache: int = 0,
) -> dict[str, dict]:
    """Per model: the median speed-up over dense across pairs, each pair's, and each pair's milliseconds."""
    results = {}
    shape = {"seq": seq, "batch": batch, "threads": threads, "runs": runs, "cache": cache}
    for model in models:
        speedups, times = [], []
        for _ in range(pairs):
            d = median_ms(dense, **shape)
            m = median_ms(model, **shape)
            speedups.append(d / m)
            times.append((d, m))
        results[model] = {"speedup": statistics.median(speedups), "pairs": speedups, "ms": times}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dense")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--cache-len", type=int, default=0, help="a decoder's decode-step graphs: past tokens in their cache (--seq 1)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = side_by_side(
        args.dense,
        args.models,
        pairs=args.pairs,
        runs=args.runs,
        seq=args.seq,
        batch=args.batch,
        threads=args.threads,
        cache=args.cache_len,
    )
    if args.json:
        print(json.dumps(results))
        return
    for model, r in results.items():
        print(f"{model}: {r['speedup']:.3f}x over dense (pairs {min(r['pairs']):.3f}-{max(r['pairs']):.3f})")


if __name__ == "__main__":
    main()
