"""The latency oracle: tables measured side by side with the dense model, the additive predictor, and the
correction whole configs measured during a search teach it (``Oracle``)."""

from prunesearch.oracle.bundle import emit_bundle, import_results
from prunesearch.oracle.conditions import Conditions, cpu_name, device_slug
from prunesearch.oracle.decoder import DecoderSpeed, decoder_speed
from prunesearch.oracle.ensure import TableCheck, TableChoice, check_table, ensure_table
from prunesearch.oracle.measure import time_configs, time_side_by_side
from prunesearch.oracle.oracle import MeasuredConfig, Measurer, Oracle
from prunesearch.oracle.predictor import Predictor, table_space
from prunesearch.oracle.profile import profile_table
from prunesearch.oracle.table import Calibration, LatencyTable, TableMeta
from prunesearch.oracle.timing import Measurement, SideBySide, TimingOptions

__all__ = [
    "Calibration",
    "Conditions",
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
