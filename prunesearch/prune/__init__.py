"""Importance, reconstruction and the level database; turning a config into a model."""

from prunesearch.prune.apply import MagnitudeSource, UnitChoice, UnitSource, arch_of, masked, prune
from prunesearch.prune.calibration import CalibrationSet, load_calibration
from prunesearch.prune.database import LevelDatabase
from prunesearch.prune.importance import magnitude, ranking, top_units

__all__ = [
    "CalibrationSet",
    "LevelDatabase",
    "MagnitudeSource",
    "UnitChoice",
    "UnitSource",
    "arch_of",
    "load_calibration",
    "magnitude",
    "masked",
    "prune",
    "ranking",
    "top_units",
]
