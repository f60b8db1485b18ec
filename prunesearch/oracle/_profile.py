"""Profile a latency table here with any backend of ``profilers`` (bundle.py: on a remote device).

Every row comes from whole pruned models timed side by side with the dense model (measure.py), so
a row is a fraction of the dense model's time that no drift of the machine moves: ``base`` = every
block removed; ``attn[h]`` = every layer keeps h heads and no FFN, minus base, divided by the
number of layers (a per-layer cost seen at full depth); likewise ``ffn[w]``. The rows are then
fitted as smooth, monotone functions of the kept size (fit.py), and a dozen whole models spread
over the speed-ups a search reaches, never used for the rows, fit the calibration of their sum.

A decode-phase table times one KV-cache decode step instead (graph/_onnx.py): its ``seq_len`` is
the new tokens per step (1 when generating token by token) and its ``cache_len`` the tokens
already cached; rows are built the same way, so the same predictor answers "milliseconds per
generated token".
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, NonNegativeInt

from prunesearch._config import Config, LayerConfig
from prunesearch._models import LoadedModel
from prunesearch._reporter import QUIET, Reporter
from prunesearch.oracle._conditions import Conditions
from prunesearch.oracle._fit import KNOT_EVERY, fit_calibration, smooth_rows
from prunesearch.oracle._measure import time_configs
from prunesearch.oracle._predictor import Predictor, table_space
from prunesearch.oracle._table import COLUMNS, ENERGY, Calibration, LatencyTable, TableMeta
from prunesearch.oracle._timing import SideBySide, TimingOptions
from prunesearch.space import Space, adapter_for


class Job(BaseModel):
    """One whole model to measure: ``base``, an ``attn``/``ffn`` level (size = kept heads or
    width, every layer), the ``size``-th ``calibration`` model, or the ``dense`` model (the
    reference every other job is timed beside)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["base", "attn", "ffn", "calibration", "dense"]
    size: NonNegativeInt
    config: Config


def calibration_configs(space: Space, n: int, *, seed: int = 0) -> list[Config]:
    """``n`` whole models spread over the speed-ups a search reaches: the i-th keeps about a fraction
    0.15 + 0.85 (i + 1/2) / n of every block's levels, each block drawn around it."""
    rng = np.random.default_rng(seed)
    upper = space.genome_upper
    configs = []
    for i in range(n):
        kept = 0.15 + 0.85 * (i + 0.5) / n
        fractions = np.clip(kept + rng.normal(0.0, 0.15, size=len(upper)), 0.0, 1.0)
        configs.append(space.from_genome(np.rint(fractions * upper).astype(np.int64)))
    return configs


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
    calib = calibration_configs(space, calibration_models, seed=seed)
    jobs += [Job(name=f"calibration-{i:02d}", kind="calibration", size=i, config=c) for i, c in enumerate(calib)]
    return jobs + [Job(name="dense", kind="dense", size=0, config=space.dense())]


def progress_bar(reporter: Reporter, label: str):
    """A "profile" progress bar, and the ``progress(stage, done, total)`` callback measure.py moves it with."""
    bar = reporter.bar("profile", label)

    def callback(update):
        def progress(stage: str, done: int, total: int) -> None:
            what = "exporting graphs" if stage == "export" else "timing side by side with the dense model"
            update(completed=done, total=total, description=f"{label}: {what}")

        return progress

    return bar, callback


def build_table(
    jobs: Sequence[Job],
    measured: SideBySide,
    *,
    conditions: Conditions,
    profiled_at: str,
    profiling_seconds: float,
    timing: TimingOptions,
    notes: str,
) -> LatencyTable:
    """The table from each job measured side by side with the dense model: level rows are (job - base)
    / layers, fitted smooth and monotone per block kind; a linear calibration of their sum is fitted on
    the calibration models and the dense model itself (exactly 1 of itself)."""
    n_layers = len(jobs[0].config.layers)
    base = measured["base"]
    rows = [
        {
            "kind": "base",
            "size": 0,
            "cost": base.ratio,
            "se": base.se,
            "measured": base.ratio,
            "measured_se": base.se,
            "rounds": base.rounds,
        }
    ]
    misfit = []
    for kind in ("attn", "ffn"):
        level = sorted((j for j in jobs if j.kind == kind), key=lambda j: j.size)
        values = [(measured[j.name].ratio - base.ratio) / n_layers for j in level]
        se = [np.hypot(measured[j.name].se, base.se) / n_layers for j in level]
        fit = smooth_rows([j.size for j in level], values, se)
        misfit.append(f"{kind}: {fit.describe()}")
        rows += [
            {
                "kind": kind,
                "size": j.size,
                "cost": float(c),
                "se": float(e),
                "measured": float(v),
                "measured_se": float(s),
                "rounds": min(measured[j.name].rounds, base.rounds),
            }
            for j, c, e, v, s in zip(level, fit.rows, fit.se, values, se)
        ]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    energy = {(j.kind, j.size): measured[j.name].energy_mj for j in jobs if j.kind in ("base", "attn", "ffn")}
    if None not in energy.values():
        e_base = energy["base", 0]
        frame[ENERGY] = [
            e_base if kind == "base" else (energy[kind, size] - e_base) / n_layers
            for kind, size in zip(frame.kind, frame["size"])
        ]
    table = LatencyTable(
        frame,
        TableMeta(
            conditions=conditions,
            n_layers=n_layers,
            profiled_at=profiled_at,
            profiling_seconds=profiling_seconds,
            dense_ms=measured.reference_ms,
            dense_p10_ms=measured.reference_p10_ms,
            dense_p90_ms=measured.reference_p90_ms,
            timing=timing,
            fit=f"linear spline in kept size, a knot every {KNOT_EVERY} levels, deviations shrunk by the noise, "
            "non-decreasing; " + "; ".join(misfit),
            notes=f"costs are fractions of the dense model's time, timed side by side with it; {notes}",
        ),
    )
    calib = [j for j in jobs if j.kind == "calibration"]
    if calib:
        dense = next(j for j in jobs if j.kind == "dense")
        fitted = [*calib, dense]
        space = table_space(table, n_layers=n_layers)
        genomes = np.array([space.to_genome(j.config) for j in fitted])
        additive = Predictor(table, space, calibrated=False).raw_ratio(genomes)
        errors = [measured[j.name].se for j in calib]
        scale, offset, rms = fit_calibration(
            additive,
            [measured[j.name].ratio for j in calib] + [1.0],  # the dense model is exactly 1 of itself
            errors + [float(np.median(errors))],
            smallest=table.cost("base", 0),
        )
        table.meta.calibration = Calibration(scale=scale, offset=offset, n_models=len(calib), rms=rms)
    return table


def profile_table(
    loaded: LoadedModel,
    conditions: Conditions,
    *,
    calibration_models: int = 12,
    timing: TimingOptions = TimingOptions(),
    seed: int = 0,
    reporter: Reporter = QUIET,
    power_s: float = 0.0,
) -> LatencyTable:
    """Measure a table of ``loaded`` here under ``conditions`` (``Conditions.here``: the workload, its backend and
    the FFN grid), every job side by side with the dense model; with ``power_s``, and where the backend reads an
    energy counter, the table gains an ``energy_mj`` column."""
    started = time.monotonic()
    c = conditions
    space = adapter_for(loaded.model).space(ffn_step=c.ffn_step)
    jobs = profile_jobs(space, calibration_models=calibration_models, seed=seed)
    bar, callback = progress_bar(reporter, f"{loaded.name} {c.describe()}")
    with bar as update:
        measured = time_configs(
            loaded,
            {j.name: j.config for j in jobs if j.kind != "dense"},
            conditions=c,
            options=timing,
            progress=callback(update),
            power_s=power_s,
        )
    return build_table(
        jobs,
        measured,
        conditions=c,
        profiled_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        profiling_seconds=round(time.monotonic() - started, 1),
        timing=timing,
        notes=f"measured with {c.backend} {c.backend_version}; the dense model drifted {measured.drift:.1%} "
        "(p90/p10 of its blocks) while profiling",
    )
