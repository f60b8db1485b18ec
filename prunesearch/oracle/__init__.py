"""The latency oracle: measured per-level tables of a device and the additive predictor."""

from prunesearch.oracle.bundle import emit_bundle, import_results
from prunesearch.oracle.conditions import Conditions, cpu_name, device_slug
from prunesearch.oracle.decoder import DecoderSpeed, decoder_speed
from prunesearch.oracle.ensure import ensure_table
from prunesearch.oracle.measure import Measurement, measure_onnx
from prunesearch.oracle.predictor import Predictor
from prunesearch.oracle.profile import conditions_for, profile_table
from prunesearch.oracle.table import Calibration, LatencyTable, TableMeta

__all__ = [
    "Calibration",
    "Conditions",
    "DecoderSpeed",
    "LatencyTable",
    "Measurement",
    "Predictor",
    "TableMeta",
    "conditions_for",
    "cpu_name",
    "decoder_speed",
    "device_slug",
    "emit_bundle",
    "ensure_table",
    "import_results",
    "measure_onnx",
    "profile_table",
]
