"""Latency tables: CSV rows (kind, size → time) plus a JSON of conditions and provenance.

Rows: ``base`` (size 0) is the model with every block removed; ``attn``/``ffn`` at
size s are what one layer's block adds at that size (layers of a model share
shapes, so one row serves every layer). ``latency_ms`` is what predictions sum
(see ``measure.Measurement``); median, p10 and p90 are kept for the record. Tables
measured where power rails were sampled (a remote-device bundle) add ``energy_mj``
per inference, rows differenced like the times.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from prunesearch.errors import TableError
from prunesearch.oracle.conditions import Conditions
from prunesearch.paths import atomic_write_text

TIMES = ["latency_ms", "median_ms", "p10_ms", "p90_ms"]
COLUMNS = ["kind", "size", *TIMES, "runs"]
#: optional last column: energy per inference (mJ), where power was recorded
ENERGY = "energy_mj"
#: bumped when rows change meaning; older tables are refused (and re-profiled by ensure_table)
TABLE_FORMAT = 2


class Calibration(BaseModel):
    """measured ≈ scale · additive sum + offset, fitted on whole models measured with the table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scale: float = 1.0
    offset_ms: float = 0.0
    n_models: int = 0


class TableMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = TABLE_FORMAT
    conditions: Conditions
    calibration: Calibration = Calibration()
    layers_share_rows: bool = True
    profiled_at: str
    profiling_seconds: float
    #: the dense model as measured with the table (tables profiled before this field have none)
    dense_ms: float | None = None
    notes: str = ""


class LatencyTable:
    def __init__(self, rows: pd.DataFrame, meta: TableMeta, *, path: Path | None = None) -> None:
        self.rows = rows
        self.meta = meta
        self.path = path

    @property
    def conditions(self) -> Conditions:
        return self.meta.conditions

    def time(self, kind: str, size: int) -> float:
        if size == 0 and kind != "base":
            return 0.0
        hit = self.rows[(self.rows.kind == kind) & (self.rows["size"] == size)]
        if hit.empty:
            raise TableError(f"{self.path}: no row for {kind} at size {size}; profile the table with this grid")
        return float(hit.latency_ms.iloc[0])

    def save(self, csv_path: str | Path) -> Path:
        csv_path = Path(csv_path)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(csv_path, self.rows[[c for c in (*COLUMNS, ENERGY) if c in self.rows]].to_csv(index=False))
        atomic_write_text(csv_path.with_suffix(".json"), self.meta.model_dump_json(indent=2))
        self.path = csv_path
        return csv_path

    @classmethod
    def load(cls, path: str | Path, *, expect: Conditions | None = None, force: bool = False) -> LatencyTable:
        csv_path = Path(path).with_suffix(".csv")
        json_path = csv_path.with_suffix(".json")
        for p in (csv_path, json_path):
            if not p.is_file():
                raise TableError(f"latency table file not found: {p} (a table is a .csv with a .json beside it)")
        try:
            meta = TableMeta.model_validate_json(json_path.read_text())
        except ValidationError as exc:
            first = exc.errors()[0]
            raise TableError(
                f"{json_path}: corrupt table metadata ({'.'.join(map(str, first['loc']))}: {first['msg']}); re-profile it"
            ) from None
        if meta.format != TABLE_FORMAT:
            raise TableError(
                f"{json_path}: table format {meta.format} was written by another prunesearch version; "
                f"this one reads format {TABLE_FORMAT}: re-profile it with `prunesearch profile`"
            )
        try:
            rows = pd.read_csv(io.StringIO(csv_path.read_text()))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise TableError(f"{csv_path}: corrupt table ({exc}); re-profile it") from None
        columns = list(rows.columns)
        if columns not in (COLUMNS, [*COLUMNS, ENERGY]) or rows[columns[2:]].isna().any().any() or "base" not in set(rows.kind):
            raise TableError(
                f"{csv_path}: truncated or malformed table (expected columns {', '.join(COLUMNS)} [, {ENERGY}] "
                "and a base row); re-profile it")
        if expect is not None:
            meta.conditions.require(expect, source=str(csv_path), force=force)
        return cls(rows, meta, path=csv_path)


def read_meta(path: Path) -> TableMeta | None:
    """The metadata of a readable table of this format, else None."""
    try:
        meta = TableMeta.model_validate_json(Path(path).with_suffix(".json").read_text())
    except (OSError, ValidationError, json.JSONDecodeError):
        return None
    return meta if meta.format == TABLE_FORMAT else None
