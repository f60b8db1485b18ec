"""The conditions a latency table was measured under; a table answers only for its own."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveInt

from prunesearch.errors import TableError
from prunesearch.oracle import run_bundle

Phase = Literal["encode", "prefill", "decode"]

#: fields that must match for a table to answer a request (the rest is provenance)
MATCHED = ("device", "backend", "precision", "threads", "batch", "seq_len", "phase", "cache_len", "model_hash", "ffn_step")


class Conditions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str
    backend: str
    backend_version: str
    precision: str = "fp32"
    threads: PositiveInt
    batch: PositiveInt
    seq_len: PositiveInt
    phase: Phase = "encode"
    cache_len: int = 0
    model: str
    model_hash: str
    ffn_step: PositiveInt

    def mismatch(self, other: Conditions) -> list[str]:
        return [f for f in MATCHED if getattr(self, f) != getattr(other, f)]

    def require(self, other: Conditions, *, source: str, force: bool = False) -> None:
        """Refuse a table (``self``) measured under other conditions than ``other``."""
        diff = self.mismatch(other)
        if diff and not force:
            detail = "; ".join(f"{f}: table {getattr(self, f)!r}, wanted {getattr(other, f)!r}" for f in diff)
            raise TableError(
                f"{source} was measured under other conditions ({detail}); profile this device with "
                "`prunesearch profile`, or use it anyway with `search --force` (device.force: true in a spec)"
            )


#: the exact CPU model (machines of one kind can hide different CPUs); the bundle runner names devices alike
cpu_name = lru_cache(maxsize=1)(run_bundle.cpu_name)


def device_slug(device: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in device.lower()).strip("-").replace("--", "-")
