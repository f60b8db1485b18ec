"""Pareto dominance over minimised objectives (shared by the search and the reports)."""

from __future__ import annotations

import numpy as np


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """True for each row of ``values`` (n × m, all minimised) that no other row dominates.

    Duplicated rows are all kept: none dominates its twin.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"expected an (n, m) array, got shape {values.shape}")
    finite = np.isfinite(values).all(axis=1)
    mask = finite.copy()
    for i in np.flatnonzero(finite):
        others = values[finite]
        dominated = (others <= values[i]).all(axis=1) & (others < values[i]).any(axis=1)
        mask[i] = not dominated.any()
    return mask
