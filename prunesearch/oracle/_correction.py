"""What the hardware teaches a table: a residual model of measured / predicted over whole configs.

A table predicts a config by adding per-block costs measured at full depth. An optimiser over those
predictions picks the configs where the sum is most wrong for this machine now (neighbouring layers that
interact, a kernel that steps at some width, another CPU than the one the table was profiled on), and how
wrong differs per machine. So whole configs the search visits are measured beside the dense model, and the
log-ratio ``r = log(measured / table prediction)`` is modelled as a Gaussian process over the configs'
per-block kept fractions ``x`` (one entry per block, 1 = dense):

    k(x, x') = c^2 + l^2 <a(x), a(x')> + s^2 exp(-|x - x'|^2 / (2 d ell^2))

a shared bias ``c`` (the table runs slow or fast everywhere here), a trend ``l`` in what a config removed
(``a``: the share of attention and FFN width removed, and of blocks removed whole), and a local term ``s``
over the ``d`` per-block entries for what no trend explains. Each measurement brings its own noise (its
standard error) and a window term ``w``: configs timed in one window share the machine's state then, which no
model of the configs can learn, and a config measured later will see another window. For time, the dense model
is an observation too (``anchored``): it is the reference, exactly 1 of itself, so the correction vanishes there.

With no measurement the correction is 0 with the prior's spread: the table as it is. The prior's scales are
assumptions (a few percent, the size of the misses seen on CPUs whose tables were profiled elsewhere or at
another time); once a few configs are measured, they are chosen from a small grid by marginal likelihood.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from prunesearch.space import Space

#: the prior scales (log-ratio): shared bias, trend, local term, its length (kept-fraction units), window
PRIOR = {"c": 0.03, "l": 0.03, "s": 0.02, "ell": 0.3, "w": 0.005}
#: the grid marginal likelihood chooses the scales from, once ``FIT_FROM`` configs are measured
GRID = {
    "c": (0.01, 0.03, 0.08),
    "l": (0.01, 0.03, 0.08),
    "s": (0.005, 0.02, 0.05),
    "ell": (0.15, 0.3, 0.6),
    "w": (0.003, 0.006, 0.012),
}
FIT_FROM = 6
#: the dense model's own noise: the reference is exactly itself
DENSE_SE = 1e-3


def kept_fractions(space: Space, genomes: np.ndarray) -> np.ndarray:
    """(n, 2 * layers): each block's kept share of its dense size (heads, FFN width)."""
    g = np.atleast_2d(np.asarray(genomes, dtype=np.int64))
    grids = [grid for layer in space.layers for grid in (layer.heads, layer.ffn)]
    shares = [np.asarray(grid, dtype=float) / max(grid[-1], 1) for grid in grids]
    return np.column_stack([share[g[:, k]] for k, share in enumerate(shares)])


def _trend(x: np.ndarray) -> np.ndarray:
    """What a config removed, per row: the share of attention, of FFN width, and of blocks removed whole."""
    return np.column_stack([1 - x[:, 0::2].mean(1), 1 - x[:, 1::2].mean(1), (x == 0).mean(1)])


@dataclass(frozen=True)
class _Scales:
    c: float
    l: float  # noqa: E741  (the kernel's name for it)
    s: float
    ell: float
    w: float

    def kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = a.shape[1]
        sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
        local = np.exp(-np.maximum(sq, 0.0) / (2 * d * self.ell**2))
        return self.c**2 + self.l**2 * (_trend(a) @ _trend(b).T) + self.s**2 * local


class Correction:
    """``fit`` on measured configs, then ``predict`` the log-ratio correction (mean, sd) of any genomes."""

    def __init__(self, space: Space, *, anchored: bool = True) -> None:
        """``anchored``: the dense model's residual is known to be 0 (time ratios, whose reference it is)."""
        self.space = space
        self.anchored = anchored
        self.scales = _Scales(**PRIOR)
        self._x = np.zeros((0, 2 * space.n_layers))
        self._alpha = np.zeros(0)
        self._chol: np.ndarray | None = None
        self.n = 0

    def fit(self, genomes: np.ndarray, residuals: np.ndarray, se: np.ndarray, windows: np.ndarray) -> Correction:
        """``residuals``: log(measured / table) per measured genome, ``se`` their standard errors (relative),
        ``windows`` the window each was timed in."""
        genomes = np.asarray(genomes, dtype=np.int64).reshape(-1, 2 * self.space.n_layers)
        self.n = len(genomes)
        if not self.n:
            self._x, self._alpha, self._chol = np.zeros((0, 2 * self.space.n_layers)), np.zeros(0), None
            return self
        dense = self.space.genome_upper[None, :] if self.anchored else genomes[:0]
        x = kept_fractions(self.space, np.vstack([genomes, dense]))
        y = np.append(np.asarray(residuals, dtype=float), np.zeros(len(dense)))
        noise = np.append(np.asarray(se, dtype=float), np.full(len(dense), DENSE_SE)) ** 2
        same = np.asarray(windows)[:, None] == np.asarray(windows)[None, :]
        window = np.zeros((len(y), len(y)))
        window[: self.n, : self.n] = same
        if self.n >= FIT_FROM:
            self.scales = max(
                (_Scales(*values) for values in itertools.product(*GRID.values())),
                key=lambda scales: _log_likelihood(scales, x, y, noise, window),
            )
        cov = self.scales.kernel(x, x) + self.scales.w**2 * window + np.diag(noise)
        self._chol = np.linalg.cholesky(cov)
        self._alpha = _solve(self._chol, y)
        self._x = x
        return self

    def predict(self, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, sd) of log(measured / table) for ``genomes`` timed in a window to come."""
        x = kept_fractions(self.space, genomes)
        prior = self.scales.c**2 + self.scales.l**2 * (_trend(x) ** 2).sum(1) + self.scales.s**2
        if self._chol is None:
            return np.zeros(len(x)), np.sqrt(prior + self.scales.w**2)
        cross = self.scales.kernel(x, self._x)
        v = np.linalg.solve(self._chol, cross.T)
        var = np.maximum(prior - (v**2).sum(0), 0.0) + self.scales.w**2
        return cross @ self._alpha, np.sqrt(var)


def _solve(chol: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.solve(chol.T, np.linalg.solve(chol, y))


def _log_likelihood(scales: _Scales, x: np.ndarray, y: np.ndarray, noise: np.ndarray, window: np.ndarray) -> float:
    cov = scales.kernel(x, x) + scales.w**2 * window + np.diag(noise)
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return -np.inf
    return float(-0.5 * y @ _solve(chol, y) - np.log(np.diag(chol)).sum())
