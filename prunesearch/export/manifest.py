"""export.json: what an export promised, what was predicted, and every measurement of it.

Every measured figure is a model timed side by side with the dense model (oracle.timing), recorded
whole: speed-up with its confidence interval, the rounds behind it, and the dense model's time in
the same window. The export's own measurement (the pick), the candidates measured beside it, and
each later ``verify`` are all kept, so the story on screen and in this file is one.
"""

from __future__ import annotations

import json
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveFloat, model_validator

from prunesearch.errors import PruneSearchError
from prunesearch.paths import atomic_write_text

MANIFEST = "export.json"
FORMATS = ("hf", "onnx", "tensorrt")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limit(_Record):
    """What an export must meet, measured: a speed-up over the dense model, or milliseconds."""

    speedup: PositiveFloat | None = None
    latency_ms: PositiveFloat | None = None

    @model_validator(mode="after")
    def _one(self) -> Limit:
        if (self.speedup is None) == (self.latency_ms is None):
            raise ValueError("a limit is a speed-up or milliseconds, exactly one")
        return self

    def ms_at(self, reference_ms: float) -> float:
        """The limit in milliseconds where the dense model takes ``reference_ms``."""
        return reference_ms / self.speedup if self.speedup is not None else self.latency_ms

    def met(self, measured, *, tolerance: float = 0.0) -> bool:
        """Whether a PairedMeasurement meets it: a speed-up checked as a speed-up, milliseconds as the
        measured ratio times the dense model measured in the same window."""
        if self.speedup is not None:
            return measured.speedup >= self.speedup * (1 - tolerance)
        return measured.latency_ms <= self.latency_ms * (1 + tolerance)

    def describe(self) -> str:
        return f"{self.speedup:.2f}x over dense" if self.speedup is not None else f"{self.latency_ms:.3f} ms"


class Measured(_Record):
    """One model timed side by side with the dense model."""

    speedup: float
    speedup_low: float  # 95% confidence interval
    speedup_high: float
    ratio: float
    se: float
    rounds: int
    latency_ms: float
    dense_ms: float
    backend: str

    @classmethod
    def of(cls, m, *, backend: str) -> Measured:
        low, high = m.speedup_interval()
        return cls(speedup=m.speedup, speedup_low=low, speedup_high=high, ratio=m.ratio, se=m.se, rounds=m.rounds,
                   latency_ms=m.latency_ms, dense_ms=m.reference_ms, backend=backend)

    def describe(self) -> str:
        return (f"{self.speedup:.3f}x (95% CI {self.speedup_low:.3f}-{self.speedup_high:.3f}x, {self.rounds} paired "
                f"rounds): {self.latency_ms:.3f} ms beside dense {self.dense_ms:.3f} ms")


class Predicted(_Record):
    speedup: float
    latency_ms: float  # at the dense time the search scaled by


class Candidate(_Record):
    """A config measured before the pick: best predicted quality first."""

    config: dict
    loss: float | None
    predicted_speedup: float
    measured: Measured
    meets: bool
    chosen: bool


class Verification(_Record):
    measured: Measured
    #: what it was checked against: the export's target, or (without one) its predicted speed-up
    against: Limit
    of: Literal["target", "prediction"]
    tolerance: float
    passed: bool
    at: str


class ExportManifest(_Record):
    model: str
    config: dict
    formats: list[str]
    table: str | None
    backend: str | None
    conditions: dict | None
    target: Limit | None = None
    predicted: Predicted | None = None
    measured: Measured | None = None
    candidates: list[Candidate] = []
    verifications: list[Verification] = []
    onnx_max_abs_diff: float | None = None
    exported_at: str

    def save(self, folder: Path) -> Path:
        atomic_write_text(Path(folder) / MANIFEST, self.model_dump_json(indent=2))
        return Path(folder) / MANIFEST


def parse_formats(text: str) -> list[str]:
    formats = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise PruneSearchError(f"--to {text!r}: unknown format {bad[0] if bad else '(none)'}; choose from {', '.join(FORMATS)}")
    return formats


def read_manifest(folder: Path) -> ExportManifest:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise PruneSearchError(f"{folder} holds no {MANIFEST}; pass a folder written by `prunesearch export`")
    try:
        return ExportManifest.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, ValueError) as exc:
        raise PruneSearchError(
            f"{path}: corrupt or older export manifest ({str(exc).splitlines()[0]}); export again") from None
