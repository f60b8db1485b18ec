"""export.json: what an export promised, what was predicted, and every measurement of it.

Every measured figure is a model timed side by side with the dense model (oracle.Measurement), recorded
whole: speed-up with its confidence interval, the rounds behind it, and the dense model's time in
the same window. The export's own measurement (the pick), the candidates measured beside it, and
each later ``verify`` are all kept, so the story on screen and in this file is one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from prunesearch._objectives import Constraint
from prunesearch._paths import atomic_write_text
from prunesearch.errors import PruneSearchError
from prunesearch.oracle import Conditions, MeasuredConfig, Measurement

MANIFEST = "export.json"
#: what ``--to`` writes. ``hf`` also writes the sentence-transformers layout when the source model has one
FORMATS = ("hf", "onnx", "tensorrt", "gguf")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


def known_values(
    measured, *, predicted: dict[str, float], exact: dict[str, float], conservative: bool = False
) -> dict[str, float]:
    """What a model is known to be, best source first: latency and speed-up as measured beside the dense
    model (a Measurement), exact counts (parameters, size), else the prediction (energy).
    ``conservative``: the measured values at the slow end of their 95% confidence interval."""
    values = dict(predicted) | dict(exact)
    if measured is not None:
        low, _ = measured.speedup_interval()
        speedup = low if conservative else measured.speedup
        values |= {"latency_ms": measured.reference_ms / speedup, "speedup": speedup}
    return values


def meets(constraints: list[Constraint], values: dict[str, float], *, tolerance: float = 0.0) -> bool:
    """Whether every constraint holds on ``values``, measured ones allowed ``tolerance`` (a share of the limit)."""
    for c in constraints:
        loose = (
            c
            if c.of.exact
            else c.model_copy(
                update={
                    "limit": c.limit * (1 + tolerance) if c.of.direction == "minimize" else c.limit * (1 - tolerance)
                }
            )
        )
        if not loose.satisfied(values[c.objective]):
            return False
    return True


class Candidate(_Record):
    """A config measured for the pick: the table's prediction, the corrected one and the measurement side by
    side (``measured``), the objectives the oracle predicted, and whether it met the limits with confidence."""

    config: dict
    loss: float | None
    #: its predicted objectives (_objectives.py names), as the oracle predicted them before it was measured
    predicted: dict[str, float]
    measured: MeasuredConfig
    meets: bool
    chosen: bool = False


class Written(_Record):
    """One format's files in the export folder (relative paths), and how to load them."""

    format: str
    files: list[str]
    notes: list[str] = []


class Verification(_Record):
    measured: Measurement
    #: what it was checked against: the export's target, or (without one) its predicted speed-up
    against: list[Constraint]
    of: Literal["target", "prediction"]
    tolerance: float
    passed: bool
    at: str


class ExportManifest(_Record):
    model: str
    config: dict
    formats: list[str]
    table: str | None
    #: the table's conditions: the workload the graphs are exported for and measured under
    conditions: Conditions | None
    target: list[Constraint] = []
    #: every objective the table and shapes predict for the exported config
    predicted: dict[str, float] = {}
    #: exact, counted on the exported model
    params: int
    size_mb: float
    measured: Measurement | None = None
    candidates: list[Candidate] = []
    #: every config the run measured beside the dense model (the table's check, the search's loop, the pick),
    #: each with the table's prediction and the corrected one made before it was measured
    measurements: list[MeasuredConfig] = []
    #: held-out quality against the dense model, by text ("in-domain": the calibration text's held-out part,
    #: "out-of-domain": another source) and stage ("pruned", then "recovered" where recovery ran)
    quality: dict[str, dict[str, dict[str, float]]] = {}
    #: the recovery distillation's budget and course (None: not run)
    recovery: dict | None = None
    verifications: list[Verification] = []
    onnx_max_abs_diff: float | None = None
    #: the TensorRT engine written beside model.onnx, and its measurement (export --to tensorrt)
    engine: str | None = None
    engine_measured: Measurement | None = None
    #: every format's files, in the order written
    written: list[Written] = []
    #: layouts that did not apply to this model, with the reason (e.g. sentence-transformers for a decoder)
    skipped: dict[str, str] = {}
    exported_at: str

    def known(self) -> dict[str, float]:
        """The export's values as best known (``known_values``)."""
        return known_values(
            self.measured, predicted=self.predicted, exact={"params": self.params, "size_mb": self.size_mb}
        )

    def save(self, folder: Path) -> Path:
        atomic_write_text(Path(folder) / MANIFEST, self.model_dump_json(indent=2))
        return Path(folder) / MANIFEST


def parse_formats(text: str) -> list[str]:
    formats = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise PruneSearchError(
            f"--to {text!r}: unknown format {bad[0] if bad else '(none)'}; choose from {', '.join(FORMATS)}"
        )
    return formats


def read_manifest(folder: Path) -> ExportManifest:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise PruneSearchError(f"{folder} holds no {MANIFEST}; pass a folder written by `prunesearch export`")
    try:
        return ExportManifest.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, ValueError) as exc:
        raise PruneSearchError(
            f"{path}: corrupt or older export manifest ({str(exc).splitlines()[0]}); export again"
        ) from None
