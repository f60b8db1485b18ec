"""A toy objective, in one module: the query heads a config keeps (exact, from the genome)."""

from __future__ import annotations

import numpy as np

from prunesearch import Objective, register_objective


def _heads(metrics, genomes: np.ndarray) -> np.ndarray:
    g = np.atleast_2d(genomes)
    grids = [layer.heads for layer in metrics.space.layers]
    return np.array([sum(grids[i][row[2 * i]] for i in range(len(grids))) for row in g], dtype=float)


HEADS_KEPT = register_objective(Objective("heads_kept", "", "minimize", "query heads kept", predict=_heads, exact=True))
