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

from prunesearch._models import LoadedModel
from prunesearch._paths import atomic_write_text
from prunesearch._reporter import QUIET, Reporter
from prunesearch._workload import Workload
from prunesearch.errors import PruneSearchError, TableError
from prunesearch.graph._onnx import vocab_of
from prunesearch.oracle._conditions import Conditions, resolved_for
from prunesearch.oracle._measure import write_graphs
from prunesearch.oracle._profile import Job, build_table, profile_jobs, progress_bar
from prunesearch.oracle._table import LatencyTable
from prunesearch.oracle._timing import Measurement, SideBySide, TimingOptions, timing_plan
from prunesearch.oracle.profilers import profiler_for
from prunesearch.space import adapter_for
from prunesearch.standalone import run_bundle
from prunesearch.standalone.run_bundle import RESULTS_FORMAT

BUNDLE_FORMAT = 2
RUNNER = Path(run_bundle.__file__)


class Levels(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    heads: tuple[NonNegativeInt, ...]
    ffn: tuple[NonNegativeInt, ...]


class Manifest(BaseModel):
    """What the bundle holds and how its graphs are run: the timing plan ``run_bundle.py`` reads
    (workload, vocabulary, reference, graphs, timing) and the profile it belongs to."""

    model_config = ConfigDict(extra="forbid")

    format: int = BUNDLE_FORMAT
    workload: Workload
    vocab: PositiveInt
    reference: str
    graphs: list[str]
    timing: TimingOptions
    model: str
    model_hash: str
    ffn_step: PositiveInt
    n_layers: PositiveInt
    levels: Levels
    created_at: str
    jobs: list[Job]


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
    platform: dict[str, str] = {}
    shared_thread_pool: bool
    power: str | None
    measured_at: str
    seconds: float
    manifest: Manifest
    reference: ReferenceResult
    jobs: dict[str, Measurement]
    timing: dict


def emit_bundle(
    loaded: LoadedModel,
    out: Path,
    workload: Workload = Workload(),
    *,
    ffn_step: int = 128,
    calibration_models: int = 12,
    timing: TimingOptions = TimingOptions(),
    seed: int = 0,
    reporter: Reporter = QUIET,
) -> Path:
    """Write the bundle folder ``out``: every job's ONNX graph for ``workload``, manifest.json, run_bundle.py.
    The workload's backend names how the device runs the graphs (``run_bundle.py --ep``); it need not run
    here, so its conditions are those of an ONNX Runtime CPU export."""
    from prunesearch.prune._apply import prune

    if not workload.backend.startswith("ort-"):
        raise PruneSearchError(
            f"a bundle is timed on the device by ONNX Runtime (ort-cpu, ort-cuda, ort-tensorrt), not {workload.backend}"
        )
    adapter = adapter_for(loaded.model)
    w = resolved_for(loaded, workload)
    profiler_for(w.backend).supports(w)  # what the device's backend runs; it need not run here
    space = adapter.space(ffn_step=ffn_step)
    jobs = profile_jobs(space, calibration_models=calibration_models, seed=seed)
    bar, callback = progress_bar(reporter, f"{loaded.name} bundle")
    with bar as update:
        write_graphs(
            out,
            {j.name: (lambda j=j: prune(loaded.model, j.config, ffn_step=ffn_step)) for j in jobs},
            workload=w,
            progress=callback(update),
        )
    plan = timing_plan(
        w, vocab=vocab_of(loaded.model), graphs=[j.name for j in jobs if j.kind != "dense"], options=timing
    )
    manifest = Manifest(
        **plan,
        model=loaded.name,
        model_hash=loaded.weights_hash,
        ffn_step=ffn_step,
        n_layers=space.n_layers,
        levels=Levels(heads=space.layers[0].heads, ffn=space.layers[0].ffn),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        jobs=jobs,
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
        raise TableError(
            f"bundle results not found: {path} (run_bundle.py writes results.json in the bundle)"
        ) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "top level"
        raise TableError(
            f"{path}: truncated or corrupt bundle results ({where}: {first['msg']}); copy results.json "
            "from the device again or re-run run_bundle.py"
        ) from None
    m = results.manifest
    if (m.format, results.format) != (BUNDLE_FORMAT, RESULTS_FORMAT):
        raise TableError(
            f"{path}: bundle format {m.format}, results format {results.format}; this prunesearch reads "
            f"{BUNDLE_FORMAT} and {RESULTS_FORMAT}: emit the bundle again with `prunesearch profile --emit-bundle`"
        )
    missing = [j.name for j in m.jobs if j.kind != "dense" and j.name not in results.jobs]
    if missing:
        raise TableError(
            f"{path}: no timing for {len(missing)} of {len(m.graphs)} graphs ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}); "
            "re-run run_bundle.py on the device to the end"
        )
    conditions = Conditions.of_results(results)
    power = f", power from {results.power}" if results.power else ""
    measured = SideBySide.of(results.model_dump())
    return build_table(
        m.jobs,
        measured,
        conditions=conditions,
        profiled_at=results.measured_at,
        profiling_seconds=results.seconds,
        timing=m.timing,
        notes=f"measured on the device by run_bundle.py (ONNX Runtime {results.backend_version}{power}); the dense "
        f"model drifted {measured.drift:.1%} (p90/p10 of its blocks) while profiling",
    )
