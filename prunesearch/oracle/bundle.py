"""Profiling a device that cannot run prunesearch (a Jetson, any board without torch).

``emit_bundle`` writes a folder to copy to the device: one ONNX graph per job of
``profile_jobs`` (the models a local profile measures), ``manifest.json`` and
``run_bundle.py``, which needs only python3, numpy and onnxruntime and times every graph
with the code ``measure.py`` uses. ``import_results`` turns the results.json it writes
(the manifest copied inside) into a LatencyTable built by the same ``build_table``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, NonNegativeInt, PositiveFloat, PositiveInt, ValidationError

from prunesearch.errors import TableError
from prunesearch.models import LoadedModel
from prunesearch.oracle.conditions import Conditions, Phase
from prunesearch.oracle.profile import Job, build_table, export_config, plan_profile, progress
from prunesearch.oracle.run_bundle import RESULTS_FORMAT
from prunesearch.oracle.table import LatencyTable
from prunesearch.paths import atomic_write_text

BUNDLE_FORMAT = 1
RUNNER = Path(__file__).with_name("run_bundle.py")


class Levels(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    heads: tuple[NonNegativeInt, ...]
    ffn: tuple[NonNegativeInt, ...]


class Manifest(BaseModel):
    """What the bundle holds and the conditions its graphs are run under."""

    model_config = ConfigDict(extra="forbid")

    format: int = BUNDLE_FORMAT
    model: str
    model_hash: str
    phase: Phase
    batch: PositiveInt
    seq_len: PositiveInt
    cache_len: NonNegativeInt = 0  # decode phase: tokens already in the KV cache
    threads: PositiveInt
    vocab: PositiveInt
    ffn_step: PositiveInt
    n_layers: PositiveInt
    levels: Levels
    budget_s: PositiveFloat
    created_at: str
    jobs: list[Job]


class JobResult(BaseModel):
    """One graph as ``run_bundle.py`` measured it (see ``run_bundle.summarise``)."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float
    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: PositiveInt
    spread: float
    energy_mj: float | None = None
    power_mw: dict[str, float] = {}


class Results(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int
    device: str
    backend: str
    backend_version: str
    power: str | None
    measured_at: str
    seconds: float
    manifest: Manifest
    jobs: dict[str, JobResult]


def emit_bundle(
    loaded: LoadedModel,
    out: Path,
    *,
    batch: int = 1,
    seq_len: int | None = None,
    threads: int = 1,
    ffn_step: int = 128,
    phase: Phase | None = None,
    cache_len: int = 0,
    calibration_models: int = 12,
    budget_s: float = 1.0,
    seed: int = 0,
    console=None,
) -> Path:
    """Write the bundle folder ``out``: every job's ONNX graph, manifest.json, run_bundle.py."""
    c, space, jobs = plan_profile(
        loaded, batch=batch, seq_len=seq_len, threads=threads, ffn_step=ffn_step, phase=phase,
        cache_len=cache_len, calibration_models=calibration_models, seed=seed,
    )
    out.mkdir(parents=True, exist_ok=True)
    with progress(console) as bar:
        task = bar.add_task(f"{loaded.name} bundle", total=len(jobs))
        for job in jobs:
            bar.update(task, description=f"{loaded.name} export {job.name}")
            export_config(loaded, job.config, out / f"{job.name}.onnx", conditions=c)
            bar.advance(task)
    manifest = Manifest(
        model=c.model, model_hash=c.model_hash, phase=c.phase, batch=batch, seq_len=c.seq_len, cache_len=c.cache_len,
        threads=threads, vocab=loaded.model.config.vocab_size, ffn_step=ffn_step, n_layers=space.n_layers,
        levels=Levels(heads=space.layers[0].heads, ffn=space.layers[0].ffn), budget_s=budget_s,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), jobs=jobs,
    )
    atomic_write_text(out / "manifest.json", manifest.model_dump_json(indent=2))
    shutil.copyfile(RUNNER, out / "run_bundle.py")
    return out


def import_results(path: str | Path) -> LatencyTable:
    """The latency table of a bundle's results.json, with the device's name and backend."""
    path = Path(path)
    try:
        results = Results.model_validate_json(path.read_text(errors="replace"))
    except FileNotFoundError:
        raise TableError(f"bundle results not found: {path} (run_bundle.py writes results.json in the bundle)") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "top level"
        raise TableError(
            f"{path}: truncated or corrupt bundle results ({where}: {first['msg']}); copy results.json "
            "from the device again or re-run run_bundle.py") from None
    m = results.manifest
    if (m.format, results.format) != (BUNDLE_FORMAT, RESULTS_FORMAT):
        raise TableError(
            f"{path}: bundle format {m.format}, results format {results.format}; this prunesearch reads "
            f"{BUNDLE_FORMAT} and {RESULTS_FORMAT}: emit the bundle again with `prunesearch profile --emit-bundle`")
    missing = [j.name for j in m.jobs if j.name not in results.jobs]
    if missing:
        raise TableError(
            f"{path}: no timing for {len(missing)} of {len(m.jobs)} graphs ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}); "
            "re-run run_bundle.py on the device to the end")
    conditions = Conditions(
        device=results.device, backend=results.backend, backend_version=results.backend_version, threads=m.threads,
        batch=m.batch, seq_len=m.seq_len, phase=m.phase, cache_len=m.cache_len, model=m.model, model_hash=m.model_hash,
        ffn_step=m.ffn_step,
    )
    power = f", power from {results.power}" if results.power else ""
    return build_table(
        m.jobs, {name: r.model_dump(exclude_none=True) for name, r in results.jobs.items()},
        conditions=conditions, profiled_at=results.measured_at, profiling_seconds=results.seconds,
        notes=f"measured on the device by run_bundle.py (ONNX Runtime {results.backend_version}{power})",
    )
