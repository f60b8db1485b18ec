"""The one prepared GPU check: everything a GPU changes, measured in one call (under 8 minutes on one H100).

Run it whenever an NVIDIA GPU is at hand (torch with CUDA, onnxruntime, nvidia-ml-py; no network):

    .venv/bin/python benchmarks/gpu_check.py                    # writes reports/gpu/, ships latency_tables/<gpu>/
    .venv/bin/python benchmarks/gpu_check.py --fake --out DIR   # the same steps on this CPU, against a fake GPU

Steps, each timed and recorded (a failed step is written down with its error, and the next one runs):

1. environment: GPU, driver, CUDA, torch and onnxruntime versions;
2. tables: MiniLM and SmolLM2 (batch 1, 128 tokens) profiled with torch-cuda in fp16 and fp32, each model
   also run back to back for its NVML energy per inference (the tables' energy_mj column);
3. oracle accuracy: held-out random MiniLM configs timed beside the dense model against the fp16 table;
4. search -> export -> verify: MiniLM at 2x on the fp16 table, NSGA-II over loss, latency and energy, the pick
   measured beside the dense model before export and verified after.

``--fake`` swaps the device layer for one this CPU has (torch-cpu in fp32/bf16, an energy counter that
charges 50 W of wall time, short timing, MiniLM only, small budgets): it checks the script, not a GPU, and
none of its numbers is a GPU figure.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class DeviceLayer:
    """What the check runs on: the backend and precisions it profiles, and how much of everything it does."""

    backend: str
    precisions: tuple[str, ...]
    models: tuple[str, ...] = ("minilm", "smollm2")
    power_s: float = 1.0
    held_out: int = 30
    evaluations: int = 60
    calibration_tokens: int = 4096
    #: tokens the exported pick is refitted on, layer by layer (None: the default budget)
    refit_tokens: int | None = None
    timing: dict = field(default_factory=dict)  # TimingOptions fields; {}: the defaults
    calibration_models: int = 12
    ship: bool = True  # measured tables into latency_tables/<device>/


REAL = DeviceLayer(backend="torch-cuda", precisions=("fp16", "fp32"))


class FakeEnergy:
    """An energy counter charging ``watts`` of wall time: a stand-in for NVML, for --fake only."""

    def __init__(self, watts: float = 50.0) -> None:
        self.watts = watts

    def read(self) -> float:
        return time.perf_counter()

    def energy_mj(self, start: float, end: float) -> float:
        return (end - start) * self.watts * 1e3


def fake_layer() -> DeviceLayer:
    """torch-cpu behind a GPU-shaped profiler that reads FakeEnergy (registered here, for --fake only)."""
    from prunesearch.oracle.profilers import register_profiler
    from prunesearch.oracle.profilers._pytorch import TorchCpu

    @register_profiler
    class FakeGpu(TorchCpu):
        name = "fake-gpu"

        def device(self) -> str:
            return "Fake GPU (this CPU; for testing benchmarks/gpu_check.py)"

        def energy_meter(self) -> FakeEnergy:
            return FakeEnergy()

    return DeviceLayer(
        backend=FakeGpu.name,
        precisions=("fp32",),
        models=("minilm",),
        power_s=0.05,
        held_out=4,
        evaluations=8,
        calibration_tokens=512,
        refit_tokens=2048,
        timing={"min_rounds": 3, "max_rounds": 4, "block_s": 0.005, "warmup": 2},
        calibration_models=3,
        ship=False,
    )


class Steps:
    """Runs named steps, recording seconds, results and errors into ``out/summary.json``."""

    def __init__(self, out: Path, log: Callable[[str], None]) -> None:
        self.out, self.log, self.results = out, log, {}

    def run(self, name: str, fn: Callable[[], dict]):
        self.log(f"== {name}")
        started = time.monotonic()
        try:
            value = fn()
            self.results[name] = {"ok": True, "seconds": round(time.monotonic() - started, 1), **value}
        except Exception as exc:  # noqa: BLE001  (one step's failure is recorded; the next step still runs)
            (self.out / f"{name}.error.txt").write_text(traceback.format_exc())
            self.results[name] = {"ok": False, "seconds": round(time.monotonic() - started, 1), "error": repr(exc)}
        self.log(f"   {json.dumps(self.results[name])[:400]}")
        (self.out / "summary.json").write_text(json.dumps(self.results, indent=2))
        return self.results[name]


def environment(layer: DeviceLayer) -> dict:
    import onnxruntime
    import torch

    from prunesearch.oracle.profilers import profiler_for

    profiler = profiler_for(layer.backend)
    profiler.check()
    return {
        "device": profiler.device(),
        "platform": profiler.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "onnxruntime": onnxruntime.__version__,
        "energy meter": type(profiler.energy_meter()).__name__,
    }


def profile(layer: DeviceLayer, out: Path, tables: dict) -> dict:
    from prunesearch import Workload, load_model
    from prunesearch.oracle import SHIPPED, Conditions, TimingOptions, device_slug, profile_table

    done = {}
    for model in layer.models:
        loaded = load_model(model)
        for precision in layer.precisions:
            workload = Workload(backend=layer.backend, precision=precision, batch=1, seq_len=128, threads=1)
            table = profile_table(
                loaded,
                Conditions.here(loaded, workload, ffn_step=128),
                timing=TimingOptions(**layer.timing),
                calibration_models=layer.calibration_models,
                power_s=layer.power_s,
            )
            c = table.conditions
            path = table.save(out / "tables" / c.file_name())
            if layer.ship:
                table.save(SHIPPED / device_slug(c.device) / c.file_name())
            tables[model, precision] = path
            cal = table.meta.calibration
            done[f"{model} {precision}"] = {
                "table": str(path),
                "dense_ms": round(table.meta.dense_ms, 4),
                "energy_mj per inference (dense, predicted)": _dense_energy(table, loaded),
                "calibration": f"x{cal.scale:.3f} {cal.offset:+.4f}, residual {cal.rms:.2%}",
                "profiling_s": table.meta.profiling_seconds,
            }
    return done


def _dense_energy(table, loaded) -> float | None:
    from prunesearch.oracle import Predictor
    from prunesearch.space import adapter_for

    space = adapter_for(loaded.model).space(ffn_step=table.conditions.ffn_step)
    energy = Predictor(table, space).energy_mj(space.genome_upper[None])
    return None if energy is None else round(float(energy[0]), 4)


def oracle_accuracy(layer: DeviceLayer, table_path: Path) -> dict:
    from prunesearch import load_model
    from prunesearch.oracle import LatencyTable, Predictor, TimingOptions, time_configs
    from prunesearch.space import adapter_for

    table = LatencyTable.load(table_path)
    loaded = load_model(table.conditions.model)
    space = adapter_for(loaded.model).space(ffn_step=table.conditions.ffn_step)
    predictor = Predictor(table, space)
    rng = np.random.default_rng(1000)  # apart from the table's own calibration models
    genomes = {f"held-out-{i:02d}": rng.integers(0, space.genome_upper + 1) for i in range(layer.held_out)}
    measured = time_configs(
        loaded,
        {name: space.from_genome(g) for name, g in genomes.items()},
        conditions=table.conditions,
        options=TimingOptions(**layer.timing),
    )
    errors = [float(predictor.speedup(g)[0]) / measured[name].speedup - 1 for name, g in genomes.items()]
    within = float(np.mean(np.abs(errors) <= 0.05))
    return {
        "table": str(table_path),
        "configs": len(errors),
        "within 5%": within,
        "median |error|": float(np.median(np.abs(errors))),
        "max |error|": float(np.max(np.abs(errors))),
        "errors": [round(e, 4) for e in errors],
    }


def search_export_verify(layer: DeviceLayer, table_path: Path, out: Path) -> dict:
    from prunesearch import parse_spec, run_spec
    from prunesearch.errors import PruneSearchError
    from prunesearch.export import export_from_run, verify_export
    from prunesearch.oracle import LatencyTable

    c = LatencyTable.load(table_path).conditions
    spec = parse_spec(
        {
            "name": "gpu-check",
            "model": c.model,
            "calibration": {"tokens": layer.calibration_tokens},
            "device": {"table": str(table_path), "backend": c.backend, "precision": c.precision, "threads": 1},
            "target": {"speedup": 2.0, "margin": 0.05},
            "objectives": ["loss", "latency_ms", "energy_mj"],
            "algorithm": "nsga2",
            "options": {"population": max(4, layer.evaluations // 4), "tokens": layer.calibration_tokens},
            "budget": {"evaluations": layer.evaluations},
            # no distillation: the check is about latency; the refit still runs, as every export does
            "recovery": {"tokens": 0, "reconstruction": {"tokens": layer.refit_tokens}},
        },
        source="gpu_check",
    )
    outcome = run_spec(spec, run_dir=out / "run")
    picked = {}
    for pick in ("best", "fastest"):  # the fastest where no candidate measured within the target: still verified
        try:
            manifest = export_from_run(
                outcome.run,
                pick=pick,
                out=out / "export",
                formats=["hf"],
                prepared=outcome.prepared,
            )
            picked["pick"] = pick
            break
        except PruneSearchError as exc:
            picked[f"pick {pick}"] = str(exc)
    else:
        raise PruneSearchError(f"nothing exported: {picked}")
    verification = verify_export(out / "export", loaded=outcome.prepared.loaded)
    return {
        **picked,
        "best predicted": None if outcome.best is None else str(outcome.best),
        "exported config": " ".join(f"{l['heads']}/{l['ffn']}" for l in manifest.config["layers"]),
        "pick measured": manifest.measured.speedup if manifest.measured else None,
        "verify speed-up": verification.measured.speedup,
        "verify 95% interval": [verification.measured.speedup_low, verification.measured.speedup_high],
        "verify passed": verification.passed,
        "predicted energy_mj": manifest.predicted.get("energy_mj"),
        "refit tokens": (manifest.recovery or {}).get("reconstruction", {}).get("tokens"),
    }


def run_check(layer: DeviceLayer, out: Path, *, log: Callable[[str], None] = print) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    steps = Steps(out, log)
    tables: dict = {}
    steps.run("environment", lambda: environment(layer))
    steps.run("tables", lambda: profile(layer, out, tables))
    first = tables.get((layer.models[0], layer.precisions[0]))
    if first is not None:
        steps.run("oracle_accuracy", lambda: oracle_accuracy(layer, first))
        steps.run("search_export_verify", lambda: search_export_verify(layer, first, out))
    write_summary(layer, out, steps.results)
    return steps.results


def write_summary(layer: DeviceLayer, out: Path, results: dict) -> None:
    lines = [
        "# GPU check",
        "",
        f"Command: `.venv/bin/python benchmarks/gpu_check.py{' --fake' if layer.backend != REAL.backend else ''}`; "
        f"backend {layer.backend}, precisions {', '.join(layer.precisions)}, models {', '.join(layer.models)}.",
    ]
    if layer.backend != REAL.backend:
        lines += ["", "**A fake device layer on a CPU: these numbers check the script, none of them is a GPU figure.**"]
    for name, result in results.items():
        lines += ["", f"## {name}: {'ok' if result['ok'] else 'FAILED'} ({result['seconds']} s)", "", "```"]
        lines += [json.dumps({k: v for k, v in result.items() if k not in ("ok", "seconds")}, indent=2)]
        lines += ["```"]
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "gpu")
    ap.add_argument("--fake", action="store_true", help="run the steps on this CPU against a fake GPU")
    args = ap.parse_args(argv)
    return run_check(fake_layer() if args.fake else REAL, args.out)


if __name__ == "__main__":
    main()
