"""Latency tables: CSV rows (kind, size -> cost) plus a JSON of conditions and provenance.

Costs are fractions of the dense model's time, measured side by side with it (timing.py): the
``base`` row (size 0) is the model with every block removed; ``attn``/``ffn`` at size s are what
one layer's block adds at that size (layers of a model share shapes, so one row serves every
layer). ``cost`` is the smooth, monotone fit of the rows (fit.py) that predictions sum, with its
standard error ``se``; ``measured`` and ``measured_se`` are the raw per-level values it was fitted
through, ``rounds`` the fewest paired rounds behind them. Absolute milliseconds are costs times
the dense model measured now (or, for a device not at hand, with the table: ``TableMeta.dense_ms``).
Tables measured where power rails were sampled (a remote-device bundle) add ``energy_mj`` per
inference, rows differenced like the costs.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, PositiveFloat, PositiveInt, ValidationError

from prunesearch._paths import atomic_write_text
from prunesearch.errors import TableError
from prunesearch.oracle._conditions import Conditions
from prunesearch.oracle._timing import TimingOptions

COLUMNS = ["kind", "size", "cost", "se", "measured", "measured_se", "rounds"]
#: optional last column: energy per inference (mJ), where power was recorded
ENERGY = "energy_mj"
#: bumped when rows change meaning; older tables are refused (and re-profiled by ensure_table)
TABLE_FORMAT = 3


class Calibration(BaseModel):
    """measured ratio ~ scale * additive sum + offset (fractions of the dense model), fitted on whole
    models measured with the table; ``rms`` is the residual left on them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scale: float = 1.0
    offset: float = 0.0
    n_models: int = 0
    rms: float = 0.0


class TableMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = TABLE_FORMAT
    conditions: Conditions
    #: the model's layers (every job prunes them all alike); None in tables written before it was recorded
    n_layers: PositiveInt | None = None
    calibration: Calibration = Calibration()
    layers_share_rows: bool = True
    profiled_at: str
    profiling_seconds: float
    #: the dense model (the reference every cost is a fraction of), median over the profile's reference blocks
    dense_ms: PositiveFloat
    #: the reference's 10th and 90th percentile blocks: how much the machine's speed moved while profiling
    dense_p10_ms: PositiveFloat
    dense_p90_ms: PositiveFloat
    timing: TimingOptions = TimingOptions()
    #: how the rows were fitted, and the worst misfit of a measured level (in its own standard errors)
    fit: str = ""
    notes: str = ""


class LatencyTable:
    def __init__(self, rows: pd.DataFrame, meta: TableMeta, *, path: Path | None = None) -> None:
        self.rows = rows
        self.meta = meta
        self.path = path

    @property
    def conditions(self) -> Conditions:
        return self.meta.conditions

    def cost(self, kind: str, size: int, column: str = "cost") -> float:
        """A row's ``column`` (a fraction of the dense model's time); a removed block costs nothing."""
        if size == 0 and kind != "base":
            return 0.0
        hit = self.rows[(self.rows.kind == kind) & (self.rows["size"] == size)]
        if hit.empty:
            raise TableError(f"{self.path}: no row for {kind} at size {size}; profile the table with this grid")
        return float(hit[column].iloc[0])

    def save(self, csv_path: str | Path) -> Path:
        csv_path = table_csv(csv_path)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(csv_path, self.rows[[c for c in (*COLUMNS, ENERGY) if c in self.rows]].to_csv(index=False))
        atomic_write_text(csv_path.with_suffix(".json"), self.meta.model_dump_json(indent=2))
        self.path = csv_path
        return csv_path

    @classmethod
    def load(cls, path: str | Path, *, expect: Conditions | None = None, force: bool = False) -> LatencyTable:
        csv_path = table_csv(path)
        json_path = csv_path.with_suffix(".json")
        for p in (csv_path, json_path):
            if not p.is_file():
                raise TableError(f"latency table file not found: {p} (a table is a .csv with a .json beside it)")
        try:
            raw = json.loads(json_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TableError(f"{json_path}: corrupt table metadata ({exc}); re-profile it") from None
        if isinstance(raw, dict) and raw.get("format") != TABLE_FORMAT:
            raise TableError(
                f"{json_path}: table format {raw.get('format')} was written by another prunesearch version; "
                f"this one reads format {TABLE_FORMAT} (costs measured side by side with the dense model): "
                "re-profile it with `prunesearch profile`"
            )
        try:
            meta = TableMeta.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise TableError(f"{json_path}: corrupt table metadata ({where}: {first['msg']}); re-profile it") from None
        try:
            rows = pd.read_csv(io.StringIO(csv_path.read_text()))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise TableError(f"{csv_path}: corrupt table ({exc}); re-profile it") from None
        columns = list(rows.columns)
        if (
            columns not in (COLUMNS, [*COLUMNS, ENERGY])
            or rows[columns[2:]].isna().any().any()
            or "base" not in set(rows.kind)
        ):
            raise TableError(
                f"{csv_path}: truncated or malformed table (expected columns {', '.join(COLUMNS)} [, {ENERGY}] "
                "and a base row); re-profile it"
            )
        if expect is not None:
            meta.conditions.require(expect, source=str(csv_path), force=force)
        return cls(rows, meta, path=csv_path)


def table_csv(path: str | Path) -> Path:
    """The CSV of a table named by its CSV, its JSON, or either without the suffix (``profile --out t``
    writes t.csv and t.json, and ``--table t`` finds them)."""
    path = Path(path)
    if path.suffix == ".json":
        return path.with_suffix(".csv")
    return path if path.suffix == ".csv" else path.with_name(path.name + ".csv")


def read_meta(path: Path) -> TableMeta | None:
    """The metadata of a readable table of this format, else None."""
    try:
        meta = TableMeta.model_validate_json(table_csv(path).with_suffix(".json").read_text())
    except (OSError, ValidationError, json.JSONDecodeError):
        return None
    return meta if meta.format == TABLE_FORMAT else None
