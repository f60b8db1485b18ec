"""Profiling a device that cannot run prunesearch (a Jetson, any board without torch).

``emit_bundle`` writes a folder to copy to the device: one ONNX graph per job of ``profile_jobs``
(the models a local profile measures), ``manifest.json`` and ``run_bundle.py``, which needs only
python3, numpy and onnxruntime and times every graph side by side with the dense one, exactly as a
local profile does (it runs the same file in a child process). ``import_results`` turns the
results.json it writes (the manifest copied inside) into a LatencyTable built by ``build_table``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, NonNegativeInt, PositiveFloat, PositiveInt, ValidationError

from prunesearch.errors import TableError
from prunesearch.models import LoadedModel
from prunesearch.oracle.conditions import Conditions, Phase
from prunesearch.oracle.measure import write_graphs
from prunesearch.oracle.profile import Job, build_table, plan_profile, progress_bar
from prunesearch.oracle.run_bundle import RESULTS_FORMAT
from prunesearch.oracle.table import LatencyTable
from prunesearch.oracle.timing import SideBySide, TimingOptions, timing_plan
from prunesearch.paths import atomic_write_text
from prunesearch.reporter import QUIET, Reporter

BUNDLE_FORMAT = 2
RUNNER = Path(__file__).with_name("run_bundle.py")


class Levels(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    heads: tuple[NonNegativeInt, ...]
    ffn: tuple[NonNegativeInt, ...]


class Manifest(BaseModel):
    """What the bundle holds and how its graphs are run: the timing plan ``run_bundle.py`` reads
    (shapes, threads, reference, graphs, timing) and the profile it belongs to."""

    model_config = ConfigDict(extra="forbid")

    format: int = BUNDLE_FORMAT
    batch: PositiveInt
    seq_len: PositiveInt
    cache_len: NonNegativeInt = 0  # decode phase: tokens already in the KV cache
    threads: PositiveInt
    vocab: PositiveInt
    reference: str
    graphs: list[str]
    timing: TimingOptions
    model: str
    model_hash: str
    phase: Phase
    ffn_step: PositiveInt
    n_layers: PositiveInt
    levels: Levels
    created_at: str
    jobs: list[Job]


class JobResult(BaseModel):
    """One graph as ``run_bundle.py`` measured it (see ``run_bundle.summarise_ratios``)."""

    model_config = ConfigDict(extra="forbid")

    ratio: PositiveFloat
    se: float
    noise_se: float
    state_se: float
    rounds: PositiveInt
    reference_ms: PositiveFloat
    ratios: list[float]
    references_ms: list[float]
    runs_per_block: PositiveInt
    energy_mj: float | None = None
    power_mw: dict[str, float] = {}


class ReferenceResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ms: PositiveFloat
    p10_ms: PositiveFloat
    p90_ms: PositiveFloat
    blocks: PositiveInt
    runs_per_block: PositiveInt
    energy_mj: float | None = None
    power_mw: dict[str, float] = {}


class Results(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int
    device: str
    backend: str
    backend_version: str
    shared_thread_pool: bool
    power: str | None
    measured_at: str
    seconds: float
    manifest: Manifest
    reference: ReferenceResult
    jobs: dict[str, JobResult]
    timing: dict


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
    timing: TimingOptions = TimingOptions(),
    seed: int = 0,
    reporter: Reporter = QUIET,
) -> Path:
    """Write the bundle folder ``out``: every job's ONNX graph, manifest.json, run_bundle.py."""
    from prunesearch.prune.apply import prune

    c, space, jobs = plan_profile(
        loaded, batch=batch, seq_len=seq_len, threads=threads, ffn_step=ffn_step, phase=phase,
        cache_len=cache_len, calibration_models=calibration_models, seed=seed,
    )
    bar, callback = progress_bar(reporter, f"{loaded.name} bundle")
    with bar as update:
        write_graphs(out, {j.name: (lambda j=j: prune(loaded.model, j.config, ffn_step=ffn_step)) for j in jobs},
                     conditions=c, progress=callback(update))
    plan = timing_plan(c, vocab=loaded.model.config.vocab_size, graphs=[j.name for j in jobs if j.kind != "dense"],
                       options=timing)
    manifest = Manifest(
        **plan, model=c.model, model_hash=c.model_hash, phase=c.phase, ffn_step=ffn_step, n_layers=space.n_layers,
        levels=Levels(heads=space.layers[0].heads, ffn=space.layers[0].ffn),
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
    missing = [j.name for j in m.jobs if j.kind != "dense" and j.name not in results.jobs]
    if missing:
        raise TableError(
            f"{path}: no timing for {len(missing)} of {len(m.graphs)} graphs ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}); "
            "re-run run_bundle.py on the device to the end")
    conditions = Conditions(
        device=results.device, backend=results.backend, backend_version=results.backend_version, threads=m.threads,
        batch=m.batch, seq_len=m.seq_len, phase=m.phase, cache_len=m.cache_len, model=m.model, model_hash=m.model_hash,
        ffn_step=m.ffn_step,
    )
    power = f", power from {results.power}" if results.power else ""
    measured = SideBySide.of(results.model_dump())
    return build_table(
        m.jobs, measured, conditions=conditions, profiled_at=results.measured_at, profiling_seconds=results.seconds,
        timing=m.timing,
        notes=f"measured on the device by run_bundle.py (ONNX Runtime {results.backend_version}{power}); the dense "
              f"model drifted {measured.drift:.1%} (p90/p10 of its blocks) while profiling",
    )
