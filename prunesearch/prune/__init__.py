"""Importance, reconstruction and the level database; turning a config into a model."""

from prunesearch.prune.apply import MagnitudeSource, UnitChoice, UnitSource, arch_of, masked, prune
from prunesearch.prune.importance import magnitude, ranking, top_units

__all__ = [
    "MagnitudeSource",
    "UnitChoice",
    "UnitSource",
    "arch_of",
    "magnitude",
    "masked",
    "prune",
    "ranking",
    "top_units",
]
