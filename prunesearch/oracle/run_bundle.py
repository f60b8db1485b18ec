#!/usr/bin/env python3
"""Time every graph of a prunesearch profiling bundle on this device and write results.json.

Needs only python3 (3.8+), numpy and onnxruntime (for ``--ep cuda|tensorrt``: onnxruntime-gpu or
NVIDIA's Jetson wheel; TensorRT itself is reached through ONNX Runtime's TensorRT EP):

    python3 run_bundle.py [--ep cpu|cuda|tensorrt] [--budget-s 1] [--power-s 2] [--out results.json]

then bring results.json back and run ``prunesearch profile --import results.json``.

Each graph is timed like ``prunesearch profile`` times it on its own machine: warm-up, fixed
threads, repeated runs summarised by the median of the quietest round. Where INA3221 rails
are readable in sysfs, or ``tegrastats`` is on PATH (Jetson), each graph then runs for
``--power-s`` more seconds while the rails are sampled, and energy per inference is recorded.

This file imports nothing from prunesearch: it is copied as is into every bundle. prunesearch
times graphs (oracle/measure.py) and reads Jetson rails (oracle/power/jetson.py) with the
functions below, so a table imported from a device is measured exactly like a local one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

RESULTS_FORMAT = 1
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
INA3221_GLOB = "sys/bus/i2c/drivers/ina3221*/*/hwmon/hwmon*"
# "VDD_IN 5078mW/5078mW" (JetPack 5+) or "POM_5V_IN 3116/3116" (JetPack 4): current/average, milliwatts.
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*(?:IN|CPU|GPU|SOC|CV|DDR|SYS)[A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?")
#: rails that carry the whole module's input power; without one, the rails are summed
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")


def summarise(times_ms, *, rounds: int = 5) -> dict[str, float]:
    """Per-run times (in the order they ran) summarised: ``latency_ms`` is the median of the
    quietest of ``rounds`` consecutive rounds; median, p10 and p90 come from all runs less those
    beyond 3 median absolute deviations above the median (single preemptions); ``spread`` is
    slowest round / quietest round - 1."""
    arr = np.asarray(times_ms, dtype=float)
    med = np.median(arr)
    mad = np.median(np.abs(arr - med)) or 1e-9
    kept = arr[arr <= med + 3 * 1.4826 * mad]
    round_medians = [float(np.median(c)) for c in np.array_split(arr, min(rounds, max(1, len(arr) // 4)))]
    return {
        "latency_ms": min(round_medians),
        "median_ms": float(np.median(kept)),
        "p10_ms": float(np.percentile(kept, 10)),
        "p90_ms": float(np.percentile(kept, 90)),
        "runs": int(len(arr)),
        "spread": max(round_medians) / min(round_medians) - 1,
    }


def time_session(
    session, feeds: dict, *, min_runs: int = 20, max_runs: int = 400, budget_s: float = 1.0, warmup: int = 5,
    attempts: int = 3, stable: float = 0.03,
) -> dict[str, float]:
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
        best = m if best is None or m["latency_ms"] < best["latency_ms"] else best
        if m["spread"] <= stable:
            break
    return best


def ort_session(path: str | Path, *, threads: int, provider: str = "CPUExecutionProvider"):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=[provider])


def feeds_for(session, *, batch: int, seq_len: int, vocab: int, cache_len: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for ``seq_len`` tokens; a decode-step graph also gets ``cache_len`` tokens of random past
    keys/values (shape (batch, heads, past, head_dim) as the graph declares it) and their positions."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in session.get_inputs():
        if inp.name == "input_ids":
            feeds[inp.name] = rng.integers(3, vocab, size=(batch, seq_len), dtype=np.int64)
        elif inp.name == "attention_mask":
            feeds[inp.name] = np.ones((batch, cache_len + seq_len), dtype=np.int64)
        elif inp.name == "position_ids":
            feeds[inp.name] = np.broadcast_to(np.arange(cache_len, cache_len + seq_len), (batch, seq_len)).copy()
        elif inp.name.startswith("past."):
            _, heads, _, head_dim = inp.shape
            feeds[inp.name] = rng.standard_normal((batch, heads, cache_len, head_dim), dtype=np.float32)
        else:  # token_type_ids
            feeds[inp.name] = np.zeros((batch, seq_len), dtype=np.int64)
    return feeds


def cpu_name() -> str:
    """The exact CPU model: machines of one kind can hide different CPUs, and a VM may show
    only a generic name ("AMD EPYC"), so x86 family/model/stepping are appended."""
    fields = {}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model", "stepping") and key not in fields:
                fields[key] = value.strip()
            if not line.strip():
                break  # the first processor describes them all
    except OSError:
        pass
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    ids = [f"{k.split()[-1]} {fields[k]}" for k in ("cpu family", "model", "stepping") if k in fields]
    return fields["model name"] + (f" ({', '.join(ids)})" if ids else "")


def device_name() -> str:
    """The board (device-tree model, e.g. a Jetson's), else the CPU."""
    try:
        return Path("/proc/device-tree/model").read_text().strip("\x00\n ") or cpu_name()
    except OSError:
        return cpu_name()


def parse_tegrastats(line: str) -> dict[str, float]:
    """Instantaneous power per rail in mW from one tegrastats line."""
    return {name: float(now) for name, now, _avg in _RAIL.findall(line)}


def read_ina3221(*, root: Path = Path("/"), pattern: str = INA3221_GLOB) -> dict[str, float]:
    """Power per labelled channel in mW = in{N}_input (mV) * curr{N}_input (mA) / 1000 (hwmon
    driver, JetPack 5+); empty where there are no such rails."""
    rails: dict[str, float] = {}
    for hwmon in sorted(root.glob(pattern)):
        for label in sorted(hwmon.glob("in*_label")):
            n = label.name[2:-len("_label")]
            volt, curr = hwmon / f"in{n}_input", hwmon / f"curr{n}_input"
            if volt.exists() and curr.exists():
                rails[label.read_text().strip()] = int(volt.read_text()) * int(curr.read_text()) / 1000.0
    return rails


def power_source(*, root: Path = Path("/")) -> str | None:
    """"ina3221" where sysfs rails read, else "tegrastats" where that tool is on PATH, else None."""
    if read_ina3221(root=root):
        return "ina3221"
    return "tegrastats" if shutil.which("tegrastats") else None


class PowerSampler:
    """Rail power (mW) sampled in a background thread while the ``with`` block runs:
    INA3221 sysfs every 10 ms, or each line of ``tegrastats --interval 20``."""

    def __init__(self, source: str, *, root: Path = Path("/")) -> None:
        self.source = source
        self.root = root
        self.samples: list[dict[str, float]] = []

    def __enter__(self) -> PowerSampler:
        self.samples = []
        self._stop = threading.Event()
        self._proc = None
        if self.source == "tegrastats":
            self._proc = subprocess.Popen(["tegrastats", "--interval", "20"], stdout=subprocess.PIPE, text=True)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        if self._proc is not None:
            for line in self._proc.stdout:
                if self._stop.is_set():
                    break
                self.samples.append(parse_tegrastats(line))
        else:
            while not self._stop.wait(0.01):
                self.samples.append(read_ina3221(root=self.root))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait()
        self._thread.join()

    def mean_mw(self) -> dict[str, float]:
        samples = [s for s in self.samples if s]
        return {rail: sum(s.get(rail, 0.0) for s in samples) / len(samples) for rail in samples[0]} if samples else {}


def measure_energy(session, feeds: dict, *, seconds: float, sampler: PowerSampler) -> dict:
    """Mean rail power while the graph runs back to back for ``seconds``, and energy per
    inference (mJ) = the total rail's mean power x elapsed time / runs; {} without samples."""
    with sampler:
        runs, start = 0, time.perf_counter()
        while runs < 1 or time.perf_counter() - start < seconds:
            session.run(None, feeds)
            runs += 1
        elapsed = time.perf_counter() - start
    power = sampler.mean_mw()
    if not power:
        return {}
    total = next((power[r] for r in TOTAL_RAILS if r in power), sum(power.values()))
    return {"energy_mj": total * elapsed / runs, "power_mw": power}


def main(argv: list[str] | None = None) -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description="Time every graph of this bundle; write results.json.")
    parser.add_argument("--ep", choices=sorted(PROVIDERS), default="cpu", help="ONNX Runtime execution provider")
    parser.add_argument("--budget-s", type=float, help="seconds of timed runs per attempt (default: the manifest's)")
    parser.add_argument("--power-s", type=float, default=2.0, help="seconds per graph of sampled power (0: none)")
    parser.add_argument("--device", default=device_name(), help="device name recorded (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=here / "results.json")
    args = parser.parse_args(argv)

    import onnxruntime as ort

    provider = PROVIDERS[args.ep]
    if provider not in ort.get_available_providers():
        parser.error(f"{provider} is not in this onnxruntime ({', '.join(ort.get_available_providers())})")
    manifest = json.loads((here / "manifest.json").read_text())
    budget_s = args.budget_s if args.budget_s is not None else manifest["budget_s"]
    power = power_source() if args.power_s > 0 else None
    started, jobs = time.monotonic(), {}
    for i, job in enumerate(manifest["jobs"], start=1):
        session = ort_session(here / f"{job['name']}.onnx", threads=manifest["threads"], provider=provider)
        feeds = feeds_for(session, batch=manifest["batch"], seq_len=manifest["seq_len"], vocab=manifest["vocab"],
                          cache_len=manifest.get("cache_len", 0))
        result = time_session(session, feeds, budget_s=budget_s)
        if power is not None:
            result.update(measure_energy(session, feeds, seconds=args.power_s, sampler=PowerSampler(power)))
        jobs[job["name"]] = result
        energy = f", {result['energy_mj']:.2f} mJ" if "energy_mj" in result else ""
        print(f"[{i}/{len(manifest['jobs'])}] {job['name']}: {result['latency_ms']:.3f} ms{energy}", flush=True)
    results = {
        "format": RESULTS_FORMAT,
        "device": args.device,
        "backend": f"ort-{args.ep}",
        "backend_version": ort.__version__,
        "power": power,
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
        "manifest": manifest,
        "jobs": jobs,
    }
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: bring it back and run `prunesearch profile --import {args.out.name}`")


if __name__ == "__main__":
    main()
