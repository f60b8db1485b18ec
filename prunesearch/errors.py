"""Errors a user can fix. The CLI prints them as one line, without a traceback."""

from __future__ import annotations


class PruneSearchError(Exception):
    """Base class: the message names the problem and, where there is one, the fix."""


class ConfigError(PruneSearchError):
    """A pruning config does not fit the model's search space."""


class ModelNotFoundError(PruneSearchError):
    """A model alias or path that cannot be resolved."""


class TableError(PruneSearchError):
    """A latency table that is missing, corrupt, or from other conditions."""


class SpecError(PruneSearchError):
    """A search spec that fails validation."""


class BackendUnavailableError(PruneSearchError):
    """A measurement backend (TensorRT, CUDA, NVML, ...) that is not installed here."""


class InfeasibleTargetError(PruneSearchError):
    """A budget that no configuration in the search space can meet."""
