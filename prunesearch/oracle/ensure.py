"""Find a table for this device, or profile one now and cache it."""

from __future__ import annotations

from pathlib import Path

from prunesearch.models import LoadedModel
from prunesearch.oracle.conditions import Phase, device_slug
from prunesearch.oracle.profile import conditions_for, profile_table
from prunesearch.oracle.table import read_meta
from prunesearch.paths import cache_dir

#: tables shipped with the project (present in a source checkout)
SHIPPED = Path(__file__).resolve().parents[2] / "latency_tables"


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
    """A table measured on this CPU under these conditions (``conditions_for``: encode, prefill or a
    KV-cache decode step): shipped, cached, or profiled now."""
    if backend != "ort-cpu":
        from prunesearch.errors import BackendUnavailableError

        raise BackendUnavailableError(
            f"automatic profiling covers ort-cpu tables; for {backend} give device.table a table measured on that device"
        )
    wanted = conditions_for(
        loaded, batch=batch, seq_len=seq_len, threads=threads, ffn_step=ffn_step, phase=phase, cache_len=cache_len,
    )
    name = table_name(
        loaded.name, backend=backend, batch=batch, seq_len=wanted.seq_len, threads=threads, phase=phase,
        cache_len=cache_len,
    )
    slug = device_slug(wanted.device)
    for folder in (SHIPPED / slug, cache_dir("latency_tables", slug)):
        meta = read_meta(folder / name)
        if meta is not None and not meta.conditions.mismatch(wanted):
            return folder / name
    if console is not None:
        console.print(f"no latency table for this CPU ({wanted.device}) yet: profiling one now")
    table = profile_table(
        loaded, batch=batch, seq_len=seq_len, threads=threads, ffn_step=ffn_step, phase=phase, cache_len=cache_len,
        console=console,
    )
    return table.save(cache_dir("latency_tables", slug) / name)
