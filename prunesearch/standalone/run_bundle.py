#!/usr/bin/env python3
"""Time every graph of a prunesearch timing bundle side by side with its reference graph; write results.json.

Needs only python3 (3.8+), numpy and onnxruntime (for ``--ep cuda|tensorrt``: onnxruntime-gpu or
NVIDIA's Jetson wheel; TensorRT itself is reached through ONNX Runtime's TensorRT EP):

    python3 run_bundle.py [--ep cpu|cuda|tensorrt] [--power-s 2] [--out results.json]

then bring results.json back and run ``prunesearch profile --import results.json``.

Why side by side: a shared machine's speed drifts by several percent within minutes, so a time
measured at one moment and compared with one from another moment proves nothing. Every graph is
timed in rounds, each block of its runs between two blocks of the reference graph (R J R J R ...),
and what is kept per round is the ratio J / mean(R before, R after): drift that is slow against one
block (a tenth of a second) cancels. A graph's result is the median of its rounds' ratios with the
standard error of that median; it is timed until the error is small enough (or ``max_rounds``).
The graphs are opened in groups (by default at most the reference's size of them at once, so a timing process
holds about two models' weights); each round visits a group's graphs in a new random order, so a burst of load
falls on different graphs.

All sessions share one intra-op thread pool: with a pool per session, the idle sessions' threads
spin after their runs and steal the cores the timed session runs on.

prunesearch times graphs on its own machine by running this very file in a clean child process (no
torch threads, no export work beside the timing), so a table imported from a device is measured
exactly like a local one. This file imports nothing from prunesearch: it is copied into every bundle.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

RESULTS_FORMAT = 3
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
INA3221_GLOB = "sys/bus/i2c/drivers/ina3221*/*/hwmon/hwmon*"
# "VDD_IN 5078mW/5078mW" (JetPack 5+) or "POM_5V_IN 3116/3116" (JetPack 4): current/average, milliwatts.
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*(?:IN|CPU|GPU|SOC|CV|DDR|SYS)[A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?")
#: rails that carry the whole module's input power; without one, the rails are summed
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
#: how side-by-side timing runs unless a manifest says otherwise (prunesearch's TimingOptions mirror these)
TIMING = {
    "min_rounds": 8,
    "max_rounds": 24,
    "block_s": 0.08,
    "rel_se": 0.004,
    "abs_se": 0.001,
    "warmup": 5,
    # None: at most the reference graph's size of other graphs held at once (one at least), so a timing
    # child holds about two models' weights, not the dense one beside 4 GB of candidates
    "memory_gb": None,
    "seed": 0,
}


# -- statistics of paired rounds ------------------------------------------------------------------


def median_se(values) -> float:
    """Standard error of the median of ``values``: 1.2533 sigma / sqrt(n), sigma = 1.4826 x the median
    absolute deviation, so a few disturbed rounds neither move the median nor inflate the error."""
    arr = np.asarray(values, dtype=float)
    mad = float(np.median(np.abs(arr - np.median(arr))))
    return 1.2533 * 1.4826 * mad / math.sqrt(len(arr))


def state_se(ratios, reference_ms) -> float:
    """How far this graph's ratio moves with the machine's state: half the gap between its median ratio in
    the rounds whose reference blocks ran slowest and in those they ran fastest (0 below 6 rounds).
    Drift that slows every graph alike cancels in a ratio; contention that hits graphs differently (a
    neighbour evicting the caches a small graph lives in) does not, and this is its share of the error."""
    r, ref = np.asarray(ratios, dtype=float), np.asarray(reference_ms, dtype=float)
    if len(r) < 6:
        return 0.0
    slow = ref > np.median(ref)
    if slow.all() or not slow.any():
        return 0.0
    return 0.5 * abs(float(np.median(r[slow]) - np.median(r[~slow])))


def window_se(ratios) -> float:
    """How far this graph's ratio moves between windows of the run: half the gap between its median ratio in
    the first and in the second half of its rounds, which ran a while apart (0 below 6 rounds). What a
    machine's state does to a ratio from one window to the next, that no single window shows."""
    r = np.asarray(ratios, dtype=float)
    if len(r) < 6:
        return 0.0
    half = len(r) // 2
    return 0.5 * abs(float(np.median(r[:half]) - np.median(r[half:])))


def summarise_ratios(ratios, reference_ms) -> dict:
    """One graph's result: the median of its per-round ratios to the reference; its standard error, from
    the rounds' scatter (``noise_se``), from the machine's state (``state_se``) and from how it moved between
    the run's windows (``window_se``); the rounds; and the reference's own median time around them."""
    noise, state, window = median_se(ratios), state_se(ratios, reference_ms), window_se(ratios)
    return {
        "ratio": float(np.median(ratios)),
        "se": math.sqrt(noise**2 + state**2 + window**2),
        "noise_se": noise,
        "state_se": state,
        "window_se": window,
        "rounds": len(ratios),
        "reference_ms": float(np.median(reference_ms)),
        "ratios": [round(float(r), 6) for r in ratios],
        "references_ms": [round(float(r), 4) for r in reference_ms],
    }


def settled(ratios, *, min_rounds: int, max_rounds: int, rel_se: float, abs_se: float) -> bool:
    if len(ratios) < min_rounds:
        return False
    return len(ratios) >= max_rounds or median_se(ratios) <= max(rel_se * float(np.median(ratios)), abs_se)


# -- the side-by-side schedule ---------------------------------------------------------------------


class CallRunner:
    """Times blocks of calls of ``step`` (one whole inference each); ``close`` frees what it holds."""

    def __init__(self, step, close=None) -> None:
        self.step = step
        self._close = close

    def block(self, runs: int) -> list:
        """Milliseconds of each of ``runs`` consecutive inferences."""
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            self.step()
            times.append((time.perf_counter() - t0) * 1e3)
        return times

    def close(self) -> None:
        if self._close is not None:
            self._close()


def _runs_per_block(runner, *, warmup: int, block_s: float) -> int:
    """Warm the runner up; enough runs per block to last ``block_s`` (3 at least, 500 at most)."""
    runner.block(warmup)
    each = float(np.median(runner.block(3)))
    return int(min(500, max(3, math.ceil(block_s * 1e3 / max(each, 1e-6)))))


def _groups(names: list, sizes: dict, limit: float) -> list:
    """Consecutive names whose sizes sum to at most ``limit`` (one at least): runners held at once."""
    groups, current, total = [], [], 0.0
    for name in names:
        size = float(sizes.get(name, 0))
        if current and total + size > limit:
            groups.append(current)
            current, total = [], 0.0
        current.append(name)
        total += size
    return groups + ([current] if current else [])


def time_paired(
    reference, jobs: dict, *, sizes: dict | None = None, reference_size: float = 0, on_settled=None, **options
) -> dict:
    """Every job timed side by side with ``reference`` (see the module docstring).

    ``reference``: an open runner (``block(runs) -> [ms]``); ``jobs``: name -> a function opening one
    runner, opened group by group so that at most ``memory_gb`` of their ``sizes`` (bytes) are held at
    once, or with ``memory_gb`` None at most ``reference_size`` (bytes); ``options``: those of ``TIMING``.
    ``on_settled(name, result, done, total)`` follows each job.
    """
    o = {**TIMING, **options}
    rng = np.random.default_rng(o["seed"])
    ref_runs = _runs_per_block(reference, warmup=o["warmup"], block_s=o["block_s"])
    ref_blocks, results = [], {}
    started = time.perf_counter()
    limit = reference_size if o["memory_gb"] is None else o["memory_gb"] * 2**30
    for group in _groups(list(jobs), sizes or {}, limit):
        runners = {name: jobs[name]() for name in group}
        try:
            runs = {name: _runs_per_block(r, warmup=o["warmup"], block_s=o["block_s"]) for name, r in runners.items()}
            ratios = {name: [] for name in group}
            around = {name: [] for name in group}
            last = float(np.median(reference.block(ref_runs)))
            pending = list(group)
            while pending:
                for name in rng.permutation(pending):
                    job = float(np.median(runners[name].block(runs[name])))
                    after = float(np.median(reference.block(ref_runs)))
                    ratios[name].append(job / (0.5 * (last + after)))
                    around[name].append(0.5 * (last + after))
                    ref_blocks.append(after)
                    last = after
                for name in [
                    n
                    for n in pending
                    if settled(ratios[n], **{k: o[k] for k in ("min_rounds", "max_rounds", "rel_se", "abs_se")})
                ]:
                    pending.remove(name)
                    results[name] = {**summarise_ratios(ratios[name], around[name]), "runs_per_block": runs[name]}
                    if on_settled is not None:
                        on_settled(name, results[name], len(results), len(jobs))
        finally:
            while runners:  # nothing else may hold a closed runner while the next group opens
                runners.popitem()[1].close()
    blocks = np.asarray(ref_blocks or [float("nan")])
    return {
        "reference": {
            "ms": float(np.median(blocks)),
            "p10_ms": float(np.percentile(blocks, 10)),
            "p90_ms": float(np.percentile(blocks, 90)),
            "blocks": len(ref_blocks),
            "runs_per_block": ref_runs,
        },
        "jobs": {name: results[name] for name in jobs},
        "timing": {k: o[k] for k in TIMING},
        "seconds": round(time.perf_counter() - started, 1),
    }


# -- ONNX Runtime ----------------------------------------------------------------------------------

_SHARED_POOL = {"threads": None}


def share_thread_pool(threads: int) -> bool:
    """Give every later session of this process one global intra-op pool of ``threads`` (call before the
    first session); False where this onnxruntime cannot, and sessions then keep their own pools."""
    try:
        from onnxruntime.capi import _pybind_state

        _pybind_state.set_global_thread_pool_sizes(threads, 1)
    except (ImportError, AttributeError, RuntimeError):
        return False
    _SHARED_POOL["threads"] = threads
    return True


def ort_session(path: str | Path, *, threads: int, provider: str = "CPUExecutionProvider"):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if _SHARED_POOL["threads"] == threads:
        options.use_per_session_threads = False
    else:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=[provider])


#: ONNX tensor types of float inputs, as numpy dtypes
FLOATS = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def feeds_for(session, *, plan: dict, seed: int = 0) -> dict:
    """Inputs of one run under a manifest's workload (batch, seq_len, phase, cache_len) and vocabulary:
    ``seq_len`` token ids and a full mask; a decode-step graph also gets ``cache_len`` tokens of random past
    keys/values (shape (batch, heads, past, head_dim) as the graph declares it) and their positions; a ViT,
    random pixels of the shape the graph declares. Float inputs take the graph's own type (fp16: float16)."""
    rng = np.random.default_rng(seed)
    w = plan["workload"]
    batch, seq_len = w["batch"], w.get("seq_len")
    cache_len = w.get("cache_len", 0) if w.get("phase") == "decode" else 0
    feeds = {}
    for inp in session.get_inputs():
        floats = FLOATS.get(getattr(inp, "type", "tensor(float)"), np.float32)
        if inp.name == "input_ids":
            feeds[inp.name] = rng.integers(3, plan["vocab"], size=(batch, seq_len), dtype=np.int64)
        elif inp.name == "attention_mask":
            feeds[inp.name] = np.ones((batch, cache_len + seq_len), dtype=np.int64)
        elif inp.name == "position_ids":
            feeds[inp.name] = np.broadcast_to(np.arange(cache_len, cache_len + seq_len), (batch, seq_len)).copy()
        elif inp.name.startswith("past."):
            _, heads, _, head_dim = inp.shape
            feeds[inp.name] = rng.standard_normal((batch, heads, cache_len, head_dim)).astype(floats)
        elif inp.name == "pixel_values":
            feeds[inp.name] = rng.standard_normal((batch, *inp.shape[1:])).astype(floats)
        else:  # token_type_ids
            feeds[inp.name] = np.zeros((batch, seq_len), dtype=np.int64)
    return feeds


def ort_step(session, feeds: dict):
    """One inference as timed. On a GPU provider the inputs are placed on the device once and the outputs
    left there (IO binding), so the timing is the graph, not host-device copies."""
    if session.get_providers()[0] == "CPUExecutionProvider":
        return lambda: session.run(None, feeds)
    import onnxruntime as ort

    binding = session.io_binding()
    for name, value in feeds.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", 0))
    for output in session.get_outputs():
        binding.bind_output(output.name, "cuda")
    return lambda: session.run_with_iobinding(binding)


def graph_runner(path: Path, *, plan: dict, provider: str):
    """A runner of one graph under a manifest's shapes and threads; refuses a provider that fell back."""
    session = ort_session(path, threads=plan["workload"]["threads"], provider=provider)
    if session.get_providers()[0] != provider:  # ONNX Runtime falls back to the CPU when an EP fails to load
        raise RuntimeError(
            f"onnxruntime could not start {provider} for {path.name} "
            f"(the session runs on {', '.join(session.get_providers())})"
        )
    feeds = feeds_for(session, plan=plan)
    runner = CallRunner(ort_step(session, feeds))
    runner.session, runner.feeds = session, feeds  # the power measurement runs the same session
    return runner


# -- the device's name and power rails -------------------------------------------------------------


def cpu_name() -> str:
    """The exact CPU model: machines of one kind can hide different CPUs, and a VM may show
    only a generic name ("AMD EPYC"), so x86 family/model/stepping are appended."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
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


def platform_facts(ep: str) -> dict:
    """What else changes timings here, as prunesearch's profilers record it: on a GPU provider the driver and
    compute capability (nvidia-smi), on a Jetson its power mode (nvpmodel -q); empty where neither answers."""
    facts = {}
    if ep != "cpu" and shutil.which("nvidia-smi"):
        out = (
            subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version,compute_cap", "--format=csv,noheader"],
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()
        )
        if out and "," in out[0]:
            driver, capability = (v.strip() for v in out[0].split(",", 1))
            facts |= {"driver": driver, "compute_capability": capability}
    if shutil.which("nvpmodel"):
        out = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True).stdout
        if "Power Mode:" in out:
            facts["power_mode"] = out.split("Power Mode:", 1)[1].splitlines()[0].strip()
    return facts


def parse_tegrastats(line: str) -> dict:
    """Instantaneous power per rail in mW from one tegrastats line."""
    return {name: float(now) for name, now, _avg in _RAIL.findall(line)}


def read_ina3221(*, root: Path = Path("/"), pattern: str = INA3221_GLOB) -> dict:
    """Power per labelled channel in mW = in{N}_input (mV) * curr{N}_input (mA) / 1000 (hwmon
    driver, JetPack 5+); empty where there are no such rails."""
    rails = {}
    for hwmon in sorted(root.glob(pattern)):
        for label in sorted(hwmon.glob("in*_label")):
            n = label.name[2 : -len("_label")]
            volt, curr = hwmon / f"in{n}_input", hwmon / f"curr{n}_input"
            if volt.exists() and curr.exists():
                rails[label.read_text().strip()] = int(volt.read_text()) * int(curr.read_text()) / 1000.0
    return rails


def power_source(*, root: Path = Path("/")) -> str | None:
    """ "ina3221" where sysfs rails read, else "tegrastats" where that tool is on PATH, else None."""
    if read_ina3221(root=root):
        return "ina3221"
    return "tegrastats" if shutil.which("tegrastats") else None


class PowerSampler:
    """Rail power (mW) sampled in a background thread while the ``with`` block runs:
    INA3221 sysfs every 10 ms, or each line of ``tegrastats --interval 20``."""

    def __init__(self, source: str, *, root: Path = Path("/")) -> None:
        self.source = source
        self.root = root
        self.samples = []

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

    def mean_mw(self) -> dict:
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


# -- the bundle ------------------------------------------------------------------------------------


def run_bundle(
    folder: Path,
    *,
    ep: str = "cpu",
    power_s: float = 0.0,
    device: str | None = None,
    options: dict | None = None,
    log=print,
) -> dict:
    """Time the graphs ``folder``'s manifest.json names side by side with its reference graph."""
    import onnxruntime as ort

    provider = PROVIDERS[ep]
    if provider not in ort.get_available_providers():
        raise RuntimeError(f"{provider} is not in this onnxruntime ({', '.join(ort.get_available_providers())})")
    plan = json.loads((folder / "manifest.json").read_text())
    shared = share_thread_pool(plan["workload"]["threads"])
    graphs = list(plan["graphs"])
    paths = {name: folder / f"{name}.onnx" for name in [plan["reference"], *graphs]}
    reference = graph_runner(paths[plan["reference"]], plan=plan, provider=provider)
    log(f"reference {plan['reference']}: timing {len(graphs)} graphs side by side with it", flush=True)
    power = power_source() if power_s > 0 else None
    energy = {}

    def opener(name):
        def open_runner():
            runner = graph_runner(paths[name], plan=plan, provider=provider)
            if power is not None:  # measured once, while the runner is held
                energy[name] = measure_energy(
                    runner.session, runner.feeds, seconds=power_s, sampler=PowerSampler(power)
                )
            return runner

        return open_runner

    def settled_line(name, result, done, total):
        log(
            f"[{done}/{total}] {name}: {result['ratio']:.4f} x reference +- {result['se']:.4f} "
            f"({result['rounds']} rounds)",
            flush=True,
        )

    timed = time_paired(
        reference,
        {name: opener(name) for name in graphs},
        sizes={n: paths[n].stat().st_size for n in graphs},
        reference_size=paths[plan["reference"]].stat().st_size,
        on_settled=settled_line,
        **{**plan.get("timing", {}), **(options or {})},
    )
    for name, values in energy.items():
        timed["jobs"][name].update(values)
    if power is not None:
        timed["reference"].update(
            measure_energy(reference.session, reference.feeds, seconds=power_s, sampler=PowerSampler(power))
        )
    return {
        "format": RESULTS_FORMAT,
        "device": device or device_name(),
        "backend": f"ort-{ep}",
        "backend_version": ort.__version__,
        "platform": platform_facts(ep),
        "shared_thread_pool": shared,
        "power": power,
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "manifest": plan,
        **timed,
    }


def main(argv: list | None = None) -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(
        description="Time this bundle's graphs side by side with its reference; write results.json."
    )
    parser.add_argument("--bundle", type=Path, default=here, help="the bundle folder (default: this file's)")
    parser.add_argument("--ep", choices=sorted(PROVIDERS), default="cpu", help="ONNX Runtime execution provider")
    parser.add_argument("--max-rounds", type=int, help="most side-by-side rounds per graph (default: the manifest's)")
    parser.add_argument("--power-s", type=float, default=2.0, help="seconds per graph of sampled power (0: none)")
    parser.add_argument("--device", default=None, help="device name recorded (default: the board or CPU model)")
    parser.add_argument("--out", type=Path, default=None, help="default: results.json in the bundle")
    args = parser.parse_args(argv)
    options = (
        {}
        if args.max_rounds is None
        else {"max_rounds": args.max_rounds, "min_rounds": min(args.max_rounds, TIMING["min_rounds"])}
    )
    try:
        results = run_bundle(args.bundle, ep=args.ep, power_s=args.power_s, device=args.device, options=options)
    except RuntimeError as err:
        parser.error(str(err))
    out = args.out or args.bundle / "results.json"
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, out)
    print(f"wrote {out}: bring it back and run `prunesearch profile --import {out.name}`")


if __name__ == "__main__":
    main()
