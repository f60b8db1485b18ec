"""Export: a run's measured pick or a hand-written config as a real, smaller model, its export.json, and the
verification of it on its table's device."""

from prunesearch.export._from_config import export_config
from prunesearch.export._from_run import export_from_run
from prunesearch.export._manifest import (
    FORMATS,
    MANIFEST,
    Candidate,
    ExportManifest,
    Verification,
    Written,
    parse_formats,
    read_manifest,
)
from prunesearch.export._pick import PICKS, Pick, limits_for, measured_pick, pick_candidates
from prunesearch.export._recovery import recovered
from prunesearch.export._verify import verify_export
from prunesearch.export._write import check_formats, write_export

__all__ = [
    "FORMATS",
    "MANIFEST",
    "PICKS",
    "Candidate",
    "ExportManifest",
    "Pick",
    "Verification",
    "Written",
    "check_formats",
    "export_config",
    "export_from_run",
    "limits_for",
    "measured_pick",
    "parse_formats",
    "pick_candidates",
    "read_manifest",
    "recovered",
    "verify_export",
    "write_export",
]
