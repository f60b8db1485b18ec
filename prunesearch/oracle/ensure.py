"""Find a table for this device, or profile one now and cache it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prunesearch.errors import BackendUnavailableError
from prunesearch.models import LoadedModel
from prunesearch.oracle.conditions import Conditions, Phase, device_slug
from prunesearch.oracle.predictor import Predictor
from prunesearch.oracle.profile import conditions_for, measure_config, profile_table
from prunesearch.oracle.table import LatencyTable, read_meta
from prunesearch.paths import cache_dir
from prunesearch.space import adapter_for

#: tables shipped with the project (present in a source checkout)
SHIPPED = Path(__file__).resolve().parents[2] / "latency_tables"
#: a shipped table is used only while the dense model measured here agrees with it this closely:
#: one CPU model in another VM (memory, neighbours, firmware) can run a few percent apart
DRIFT_TOLERANCE = 0.03


def dense_drift(loaded: LoadedModel, path: Path, conditions: Conditions) -> tuple[float, float]:
    """(then, now): the dense model as measured with the table (or, for a table without that
    measurement, as the table predicts it) and as measured here now, in milliseconds."""
    space = adapter_for(loaded.model).space(ffn_step=conditions.ffn_step)
    table = LatencyTable.load(path)
    then = table.meta.dense_ms or Predictor(table, space).dense_ms
    with tempfile.TemporaryDirectory() as tmp:
        now = measure_config(loaded, space.dense(), conditions=conditions, workdir=Path(tmp), budget_s=2.0)
    return then, now.latency_ms


def table_name(
    model: str, *, backend: str, batch: int, seq_len: int, threads: int, phase: Phase | None = None, cache_len: int = 0,
) -> str:
    if phase == "decode":
        return f"{model}-{backend}-decode-b{batch}-s{seq_len}-c{cache_len}-t{threads}.csv"
    return f"{model}-{backend}-b{batch}-s{seq_len}-t{threads}.csv"


def ensure_table(
    loaded: LoadedModel,
    *,
    backend: str = "ort-cpu",
    batch: int = 1,
    seq_len: int | None = None,
    threads: int = 1,
    phase: Phase | None = None,
    cache_len: int = 0,
    ffn_step: int = 128,
    console=None,
) -> Path:
    """A table measured on this machine with ``backend`` under these conditions (``conditions_for``:
    encode, prefill or a KV-cache decode step): shipped, cached, or profiled now."""
    try:
        wanted = conditions_for(
            loaded, batch=batch, seq_len=seq_len, threads=threads, ffn_step=ffn_step, phase=phase, cache_len=cache_len,
            backend=backend,
        )
    except BackendUnavailableError as exc:
        raise BackendUnavailableError(
            f"{exc}; to search for a device not at hand, set device.table to a table measured on it"
        ) from None
    name = table_name(
        loaded.name, backend=backend, batch=batch, seq_len=wanted.seq_len, threads=threads, phase=phase,
        cache_len=cache_len,
    )
    slug = device_slug(wanted.device)
    for folder in (SHIPPED / slug, cache_dir("latency_tables", slug)):
        meta = read_meta(folder / name)
        if meta is None or meta.conditions.mismatch(wanted):
            continue
        if folder != SHIPPED / slug:  # profiled on this machine
            return folder / name
        then, now = dense_drift(loaded, folder / name, wanted)
        drift = now / then - 1
        fits = abs(drift) <= DRIFT_TOLERANCE
        if console is not None:
            verdict = "using it" if fits else "this machine runs differently from the one it was measured on"
            console.print(
                f"shipped table {folder / name}: the dense model measures {now:.3f} ms here now, {then:.3f} ms with "
                f"the table ({drift:+.1%}; tolerance ±{DRIFT_TOLERANCE:.0%}): {verdict}"
            )
        if fits:
            return folder / name
    if console is not None:
        console.print(f"profiling a latency table on this machine ({wanted.device}) now; it is cached for later runs")
    table = profile_table(
        loaded, backend=backend, batch=batch, seq_len=seq_len, threads=threads, ffn_step=ffn_step, phase=phase,
        cache_len=cache_len, console=console,
    )
    return table.save(cache_dir("latency_tables", slug) / name)
