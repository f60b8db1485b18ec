"""Find a table for this device, check it still describes this machine, or profile one now and cache it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from prunesearch._config import Config
from prunesearch._models import LoadedModel
from prunesearch._paths import cache_dir
from prunesearch._reporter import QUIET, Reporter
from prunesearch._workload import Workload
from prunesearch.errors import BackendUnavailableError
from prunesearch.oracle._conditions import Conditions, device_slug
from prunesearch.oracle._measure import time_configs
from prunesearch.oracle._predictor import Predictor
from prunesearch.oracle._profile import calibration_configs, profile_table
from prunesearch.oracle._table import LatencyTable, read_meta
from prunesearch.oracle._timing import Measurement, TimingOptions
from prunesearch.space import adapter_for

#: tables shipped with the project (present in a source checkout), and where `prunesearch profile` writes
SHIPPED = Path(__file__).resolve().parents[2] / "latency_tables"
#: where ``ensure_table`` looks for shipped tables instead; set empty, none is looked at (a machine the project
#: has never seen: with an empty $PRUNESEARCH_CACHE too, every table is profiled here)
TABLES_ENV = "PRUNESEARCH_TABLES"
#: a stored table is used only while whole models measured here now, side by side with the dense model,
#: cost what it predicts this closely: one CPU model in another VM (memory, neighbours, firmware) can differ
DRIFT_TOLERANCE = 0.03
#: the check's models: spread from light to heavy pruning, drawn apart from the table's own calibration models
CHECK_MODELS = 3
CHECK_TIMING = TimingOptions(min_rounds=6, max_rounds=16)


@dataclass(frozen=True)
class TableCheck:
    """A few whole models measured now beside the dense model, against the table's predicted ratios."""

    errors: tuple[float, ...]  # measured / predicted - 1, per model
    reference_ms: float  # the dense model, measured now
    #: the models measured and their measurements (an oracle built on this table takes them in)
    configs: tuple[Config, ...] = ()
    measured: tuple[Measurement, ...] = ()
    #: how far a model may be off: DRIFT_TOLERANCE, or twice the table's own calibration error where that
    #: is larger (a decode-step table's calibration models scatter by a few percent: no check can be tighter)
    tolerance: float = DRIFT_TOLERANCE

    @property
    def worst(self) -> float:
        return max(abs(e) for e in self.errors)

    @property
    def fits(self) -> bool:
        return self.worst <= self.tolerance

    def describe(self) -> str:
        errors = ", ".join(f"{e:+.1%}" for e in self.errors)
        return (
            f"{len(self.errors)} whole models measured now beside the dense model ({self.reference_ms:.3f} ms) "
            f"cost {errors} vs the table's predictions (tolerance ±{self.tolerance:.1%})"
        )


@dataclass(frozen=True)
class TableChoice:
    """The table a search uses (loaded) and the dense model's milliseconds its ratios are scaled by."""

    table: LatencyTable
    reference_ms: float
    how: str  # "profiled now", "shipped", "cached", "given" or "the run's"
    check: TableCheck | None = None

    @property
    def path(self) -> Path:
        return self.table.path

    def describe(self) -> str:
        where = {"profiled now": "measured with the table just profiled", "the run's": "stored with the run"}
        source = (
            "measured now beside the check's models" if self.check else where.get(self.how, "measured with the table")
        )
        return f"{self.path} ({self.how}); dense model {self.reference_ms:.3f} ms, {source}"


def check_table(loaded: LoadedModel, table: LatencyTable, conditions: Conditions) -> TableCheck:
    """Measure ``CHECK_MODELS`` whole models side by side with the dense model and compare their ratios with
    the table's: drift of the machine's speed cancels, a machine that runs these models differently shows."""
    space = adapter_for(loaded.model).space(ffn_step=conditions.ffn_step)
    configs = calibration_configs(space, CHECK_MODELS, seed=1)
    measured = time_configs(
        loaded, {f"check-{i}": c for i, c in enumerate(configs)}, conditions=conditions, options=CHECK_TIMING
    )
    predictor = Predictor(table, space)
    predicted = [predictor.config_ratio(c) for c in configs]
    errors = tuple(measured[f"check-{i}"].ratio / p - 1 for i, p in enumerate(predicted))
    cal = table.meta.calibration
    own = 2 * cal.rms / min(predicted) if cal is not None else 0.0
    return TableCheck(
        errors=errors,
        reference_ms=measured.reference_ms,
        tolerance=max(DRIFT_TOLERANCE, own),
        configs=tuple(configs),
        measured=tuple(measured[f"check-{i}"] for i in range(len(configs))),
    )


def ensure_table(
    loaded: LoadedModel,
    workload: Workload,
    *,
    ffn_step: int = 128,
    reporter: Reporter = QUIET,
    requires: str | None = None,
) -> TableChoice:
    """A table measured on this machine under ``workload`` (``Conditions.here``: encode, prefill or a
    KV-cache decode step), loaded: shipped or cached, when ``check_table`` passes now; else profiled now and
    cached. ``requires``: what the device is, said where its backend is missing here."""
    try:
        wanted = Conditions.here(loaded, workload, ffn_step=ffn_step)
    except BackendUnavailableError as exc:
        needs = f"; this search needs {requires}" if requires else ""
        raise BackendUnavailableError(
            f"{exc}{needs}; to search for a device not at hand, set device.table to a table measured on it"
        ) from None
    name = wanted.file_name()
    slug = device_slug(wanted.device)
    cached = cache_dir("latency_tables", slug) / name
    shipped = os.environ.get(TABLES_ENV, str(SHIPPED))
    stored = ([("shipped", Path(shipped) / slug / name)] if shipped else []) + [("cached", cached)]
    for how, path in stored:
        meta = read_meta(path)
        if meta is None or meta.conditions.mismatch(wanted):
            continue
        table = LatencyTable.load(path)
        check = check_table(loaded, table, wanted)
        verdict = "using it" if check.fits else "this machine runs differently now"
        reporter.line(f"{how} table {path}: {check.describe()}: {verdict}")
        if check.fits:
            return TableChoice(table=table, reference_ms=check.reference_ms, how=how, check=check)
    reporter.line(f"profiling a latency table on this machine ({wanted.device}) now; it is cached for later runs")
    table = profile_table(loaded, wanted, reporter=reporter)
    table.save(cached)
    return TableChoice(table=table, reference_ms=table.meta.dense_ms, how="profiled now")
