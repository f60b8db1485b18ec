"""Profile a latency table here with any backend of ``profilers`` (bundle.py: on a remote device).

Every row comes from a whole pruned model timed as is (exported to ONNX for the ONNX
backends, the torch module itself for torch's), so what the table holds is what a
deployed model runs: ``base`` = every block removed; ``attn[h]`` = every layer keeps
h heads and no FFN, minus base, divided by the number of layers (a per-layer cost
seen at full depth, with its noise averaged over the layers); likewise ``ffn[w]``.
A dozen random whole models, never used for the rows, then fit the calibration.

A decode-phase table times one KV-cache decode step instead (export/onnx.py): its
``seq_len`` is the new tokens per step (1 when generating token by token) and its
``cache_len`` the tokens already cached; rows are built the same way, so the same
predictor answers "milliseconds per generated token".
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, NonNegativeInt
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from prunesearch.config import Config, LayerConfig
from prunesearch.export.onnx import export_onnx
from prunesearch.models import LoadedModel
from prunesearch.errors import PruneSearchError
from prunesearch.oracle.conditions import Conditions, Phase
from prunesearch.oracle.measure import Measurement
from prunesearch.oracle.profilers import profiler_for
from prunesearch.oracle.table import ENERGY, TIMES, Calibration, LatencyTable, TableMeta
from prunesearch.prune.apply import prune
from prunesearch.space import Space, adapter_for


def conditions_for(
    loaded: LoadedModel, *, batch: int, seq_len: int | None, threads: int, ffn_step: int, phase: Phase | None = None,
    cache_len: int = 0, backend: str = "ort-cpu",
) -> Conditions:
    """The conditions of a table of ``loaded`` measured here with ``backend`` (its name, version and device;
    BackendUnavailableError where it cannot run here). ``phase="decode"``: one step of ``seq_len``
    new tokens (default 1) after ``cache_len`` cached ones; any other phase is the full-sequence pass of
    ``seq_len`` tokens (default 128), recorded as "prefill" for a decoder and "encode" for an encoder."""
    if phase == "decode" and not (loaded.is_decoder and cache_len > 0):
        raise PruneSearchError(f"a decode-phase table needs a decoder and cache_len > 0 ({loaded.name}, cache_len {cache_len})")
    if phase != "decode" and cache_len:
        raise PruneSearchError(f"cache_len {cache_len} is for the decode phase only; add phase decode")
    profiler = profiler_for(backend)
    profiler.check()
    return Conditions(
        device=profiler.device(), backend=profiler.name, backend_version=profiler.version(), threads=threads,
        batch=batch, seq_len=seq_len or (1 if phase == "decode" else 128), phase=phase if phase == "decode" else "prefill" if loaded.is_decoder else "encode",
        cache_len=cache_len, model=loaded.name, model_hash=loaded.weights_hash, ffn_step=ffn_step,
    )


class Job(BaseModel):
    """One whole model to measure: ``base``, an ``attn``/``ffn`` level (size = kept heads or
    width, every layer), the ``size``-th ``calibration`` model, or the ``dense`` model (kept in
    the table's metadata: what a later check of the device measures it against)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["base", "attn", "ffn", "calibration", "dense"]
    size: NonNegativeInt
    config: Config


def profile_jobs(space: Space, *, calibration_models: int = 12, seed: int = 0) -> list[Job]:
    """The models a table is measured from, on this machine or in a remote-device bundle."""
    layer = space.layers[0]
    if any(l != layer for l in space.layers):
        raise NotImplementedError("tables assume layers of one shape; this model's layers differ")

    def every_layer(heads: int, ffn: int) -> Config:
        return Config(layers=(LayerConfig(heads=heads, ffn=ffn),) * space.n_layers)

    jobs = [Job(name="base", kind="base", size=0, config=every_layer(0, 0))]
    jobs += [Job(name=f"attn-{h}", kind="attn", size=h, config=every_layer(h, 0)) for h in layer.heads[1:]]
    jobs += [Job(name=f"ffn-{w}", kind="ffn", size=w, config=every_layer(0, w)) for w in layer.ffn[1:]]
    rng = np.random.default_rng(seed)
    calib = [space.from_genome(rng.integers(0, space.genome_upper + 1)) for _ in range(calibration_models)]
    jobs += [Job(name=f"calibration-{i:02d}", kind="calibration", size=i, config=c) for i, c in enumerate(calib)]
    return jobs + [Job(name="dense", kind="dense", size=0, config=space.dense())]


def _export(model: nn.Module, path: Path, conditions: Conditions) -> Path:
    c = conditions
    return export_onnx(model, path, batch=c.batch, seq_len=c.seq_len, cache_len=c.cache_len if c.phase == "decode" else None)


def export_config(loaded: LoadedModel, config: Config, path: Path, *, conditions: Conditions) -> Path:
    """``config``'s pruned model as the graph ``conditions`` time: a full sequence, or one decode step."""
    return _export(prune(loaded.model, config, ffn_step=conditions.ffn_step), path, conditions)


def measure_model(model: nn.Module, *, conditions: Conditions, workdir: Path, budget_s: float = 1.0) -> Measurement:
    """A whole (pruned) model timed here under ``conditions`` with their backend: the module itself
    (torch backends) or its exported graph, written into ``workdir``."""
    c = conditions
    profiler = profiler_for(c.backend)
    timed = model if profiler.takes == "torch" else _export(model, Path(workdir) / "m.onnx", c)
    return profiler.measure(
        timed, batch=c.batch, seq_len=c.seq_len, threads=c.threads, vocab=model.config.vocab_size,
        cache_len=c.cache_len, budget_s=budget_s,
    )


def measure_config(
    loaded: LoadedModel, config: Config, *, conditions: Conditions, workdir: Path, budget_s: float = 1.0,
) -> Measurement:
    """``config``'s pruned model timed by ``measure_model``."""
    pruned = prune(loaded.model, config, ffn_step=conditions.ffn_step)
    return measure_model(pruned, conditions=conditions, workdir=workdir, budget_s=budget_s)


def progress(console) -> Progress:
    return Progress(
        TextColumn("[bold]profile[/] {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    )


def build_table(
    jobs: Sequence[Job],
    results: Mapping[str, Mapping[str, float]],
    *,
    conditions: Conditions,
    profiled_at: str,
    profiling_seconds: float,
    notes: str,
) -> LatencyTable:
    """The table from each job's whole-model result (latency columns, ``runs``, optionally
    ``energy_mj``): level rows are (model - base) / layers, and a linear calibration of the
    additive sum is fitted on the calibration models."""
    level_jobs = [j for j in jobs if j.kind in ("base", "attn", "ffn")]
    columns = TIMES + ([ENERGY] if all(ENERGY in results[j.name] for j in level_jobs) else [])
    base = results["base"]
    rows = []
    for job in level_jobs:
        m = results[job.name]
        if job.kind == "base":
            values = {k: m[k] for k in columns}
        else:
            values = {k: (m[k] - base[k]) / len(job.config.layers) for k in columns}
        rows.append({"kind": job.kind, "size": job.size, **values, "runs": int(m["runs"])})
    table = LatencyTable(pd.DataFrame(rows), TableMeta(
        conditions=conditions, profiled_at=profiled_at, profiling_seconds=profiling_seconds,
        dense_ms=results["dense"]["latency_ms"] if "dense" in results else None,
        notes=f"rows: (whole model with every layer at that level, other block kind removed) minus base, per layer; {notes}",
    ))
    calib = [j for j in jobs if j.kind == "calibration"]
    if len(calib) >= 2:
        sums = [
            table.time("base", 0) + sum(table.time("attn", l.heads) + table.time("ffn", l.ffn) for l in j.config.layers)
            for j in calib
        ]
        scale, offset = np.polyfit(sums, [results[j.name]["latency_ms"] for j in calib], 1)
        table.meta.calibration = Calibration(scale=float(scale), offset_ms=float(offset), n_models=len(calib))
    return table


def plan_profile(
    loaded: LoadedModel, *, batch: int, seq_len: int | None, threads: int, ffn_step: int, phase: Phase | None,
    cache_len: int, calibration_models: int, seed: int, backend: str = "ort-cpu",
) -> tuple[Conditions, Space, list[Job]]:
    """The conditions, space and jobs of a table, shared by a local profile and a remote bundle."""
    c = conditions_for(
        loaded, batch=batch, seq_len=seq_len, threads=threads, ffn_step=ffn_step, phase=phase, cache_len=cache_len,
        backend=backend,
    )
    space = adapter_for(loaded.model).space(ffn_step=ffn_step)
    return c, space, profile_jobs(space, calibration_models=calibration_models, seed=seed)


def profile_table(
    loaded: LoadedModel,
    *,
    backend: str = "ort-cpu",
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
) -> LatencyTable:
    """Measure a table here with ``backend`` under ``conditions_for`` these arguments."""
    started = time.monotonic()
    c, space, jobs = plan_profile(
        loaded, batch=batch, seq_len=seq_len, threads=threads, ffn_step=ffn_step, phase=phase,
        cache_len=cache_len, calibration_models=calibration_models, seed=seed, backend=backend,
    )
    measured = {}
    with tempfile.TemporaryDirectory() as tmp, progress(console) as bar:
        cached = f" c{c.cache_len}" if c.phase == "decode" else ""
        task = bar.add_task(f"{loaded.name} {c.backend} b{c.batch} s{c.seq_len}{cached} t{c.threads}", total=len(jobs))
        for job in jobs:
            bar.update(task, description=f"{loaded.name} {job.name}")
            m = measure_config(loaded, job.config, conditions=c, workdir=Path(tmp), budget_s=budget_s)
            measured[job.name] = asdict(m)
            bar.advance(task)
    return build_table(
        jobs, measured,
        conditions=c,
        profiled_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        profiling_seconds=round(time.monotonic() - started, 1),
        notes=f"measured with {c.backend} {c.backend_version}",
    )
