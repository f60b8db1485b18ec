"""Importance, reconstruction and the level database; turning a config into a model."""

from prunesearch.prune._apply import MagnitudeSource, UnitChoice, UnitSource, arch_of, masked, prune
from prunesearch.prune._calibration import CalibrationSet, load_calibration
from prunesearch.prune._database import LevelDatabase
from prunesearch.prune._importance import magnitude, ranking, top_units
from prunesearch.prune._recover import ReconstructionOptions, RecoveryOptions, RecoveryResult, recover

__all__ = [
    "CalibrationSet",
    "LevelDatabase",
    "MagnitudeSource",
    "ReconstructionOptions",
    "RecoveryOptions",
    "RecoveryResult",
    "UnitChoice",
    "UnitSource",
    "arch_of",
    "load_calibration",
    "magnitude",
    "masked",
    "prune",
    "ranking",
    "recover",
    "top_units",
]
