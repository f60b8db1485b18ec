"""The latency oracle: tables measured side by side with the dense model, the additive predictor, and the
correction whole configs measured during a search teach it (``Oracle``)."""

from prunesearch.oracle._bundle import emit_bundle, import_results
from prunesearch.oracle._conditions import Conditions, cpu_name, device_slug
from prunesearch.oracle._correction import Correction
from prunesearch.oracle._decoder import DecoderSpeed, decoder_speed
from prunesearch.oracle._ensure import SHIPPED, TABLES_ENV, TableCheck, TableChoice, check_table, ensure_table
from prunesearch.oracle._measure import time_configs, time_side_by_side
from prunesearch.oracle._oracle import MeasuredConfig, Measurer, Oracle
from prunesearch.oracle._predictor import Predictor, table_space
from prunesearch.oracle._profile import profile_table
from prunesearch.oracle._table import ENERGY, Calibration, LatencyTable, TableMeta
from prunesearch.oracle._timing import Measurement, SideBySide, TimingOptions

__all__ = [
    "ENERGY",
    "SHIPPED",
    "TABLES_ENV",
    "Calibration",
    "Conditions",
    "Correction",
    "DecoderSpeed",
    "LatencyTable",
    "MeasuredConfig",
    "Measurement",
    "Measurer",
    "Oracle",
    "Predictor",
    "SideBySide",
    "TableCheck",
    "TableChoice",
    "TableMeta",
    "TimingOptions",
    "check_table",
    "cpu_name",
    "decoder_speed",
    "device_slug",
    "emit_bundle",
    "ensure_table",
    "import_results",
    "profile_table",
    "table_space",
    "time_configs",
    "time_side_by_side",
]
