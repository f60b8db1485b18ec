"""Rows a search cannot exploit, and the calibration of their sum.

An optimiser over noisy costs picks the costs that came out low: a level whose job happened to
measure cheap is where the search piles on. So a table's rows are fitted through all levels of a
block kind: a robust (Huber-weighted) least-squares linear spline in the kept size (latency is
close to piecewise linear in width on one kernel), with a knot every few levels. A level may cost
*more* than the curve says, and keeps what it measured: some kernels step at particular widths
(MiniLM's FFN at 1024 on an AMD EPYC costs 3% more than its neighbours suggest, in every profile).
A level may look *cheaper* than the curve only by what its measurement error cannot explain
(deviations below it are shrunk by ``CHEAP_SE`` standard errors). The rows are then made
non-decreasing. Each row's standard error adds the curve's and its own measurement's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: a spline knot every this many levels (fewer levels: one straight line)
KNOT_EVERY = 4


def _spline_basis(sizes: np.ndarray, knots: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones_like(sizes), sizes, *[np.maximum(sizes - k, 0.0) for k in knots]])


def _non_decreasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted pool-adjacent-violators: the closest non-decreasing sequence."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values, weights):
        blocks.append([float(v), float(w), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, w2, n2), (m1, w1, n1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([np.full(n, m) for m, _, n in blocks])


#: how many standard errors a level must measure below the curve before any of it counts as cheaper
CHEAP_SE = 3.0
#: Huber threshold of the robust fit, in standard errors
HUBER = 2.0


@dataclass(frozen=True)
class RowFit:
    rows: np.ndarray
    se: np.ndarray
    #: reduced chi-square of the measured levels about the spline (about 1: the spline explains them)
    chi2: float
    #: levels above the curve (kept as measured) and below it beyond their errors (kept in part)
    above: int
    below: int

    def describe(self) -> str:
        return (
            f"spline chi2/dof {self.chi2:.2f}, {self.above} levels above the curve kept, {self.below} below it "
            f"beyond {CHEAP_SE:g} se kept in part"
        )


def _weighted_fit(basis: np.ndarray, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cov = np.linalg.pinv(basis.T @ (basis * weights[:, None]))
    return basis @ (cov @ (basis.T @ (weights * y))), np.einsum("ij,jk,ik->i", basis, cov, basis)


def smooth_rows(sizes, values, se, *, knot_every: int = KNOT_EVERY) -> RowFit:
    """Per-level costs ``values`` (errors ``se``) at increasing ``sizes`` fitted as the module docstring
    says. One or two levels are kept as measured."""
    x, y = np.asarray(sizes, dtype=float), np.asarray(values, dtype=float)
    s = np.asarray(se, dtype=float)
    if len(x) <= 2:
        return RowFit(rows=np.maximum(y, 0.0), se=s, chi2=0.0, above=0, below=0)
    # a level whose error came out tiny must not pin the curve alone
    s = np.maximum(s, 0.25 * float(np.median(s)) + 1e-12)
    knots = x[knot_every - 1 : -1 : knot_every] if len(x) > knot_every else x[:0]
    basis = _spline_basis(x, knots)
    weights = 1.0 / s**2
    robust = weights
    for _ in range(10):  # Huber: a level far off the curve (a real step) must not bend it for its neighbours
        fitted, fit_var = _weighted_fit(basis, y, robust)
        z = np.abs(y - fitted) / s
        robust = weights * np.minimum(1.0, HUBER / np.maximum(z, 1e-12))
    residual = y - fitted
    dof = max(len(x) - basis.shape[1], 1)
    chi2 = float(np.sum(weights * residual**2) / dof)
    deviation = np.where(residual > 0, residual, np.minimum(residual + CHEAP_SE * s, 0.0))
    rows = _non_decreasing(fitted + deviation, weights)
    return RowFit(
        rows=np.maximum(rows, 0.0),
        se=np.sqrt(fit_var + s**2),
        chi2=chi2,
        above=int(np.sum(residual > 0)),
        below=int(np.sum(residual < -CHEAP_SE * s)),
    )


#: a fitted calibration scale outside this range says the models it saw barely differ (a tiny model's
#: fixed overheads): a scale alone through the origin is fitted instead
SCALE_RANGE = (0.5, 2.0)


def fit_calibration(additive, measured, se, *, smallest: float | None = None) -> tuple[float, float, float]:
    """(scale, offset, rms residual) of measured ~ scale * additive + offset, weighted by 1 / se^2.

    ``smallest`` is the additive cost of the smallest model the table can describe (every block removed:
    its measured ratio). The calibration models span modest speed-ups; a line through them whose offset
    would predict the smallest model at under half its measured cost (a noisy profile once predicted it
    at -350x) says nothing about small models, so a scale through the origin is fitted instead."""
    a, m = np.asarray(additive, dtype=float), np.asarray(measured, dtype=float)
    w = 1.0 / np.maximum(np.asarray(se, dtype=float), 1e-6) ** 2
    basis = np.column_stack([a, np.ones_like(a)])
    scale, offset = np.linalg.lstsq(basis * np.sqrt(w)[:, None], m * np.sqrt(w), rcond=None)[0]
    breaks_small = smallest is not None and scale * smallest + offset < 0.5 * smallest
    if breaks_small or not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        scale, offset = float(np.sum(w * a * m) / np.sum(w * a * a)), 0.0
    rms = float(np.sqrt(np.mean((scale * a + offset - m) ** 2)))
    return float(scale), float(offset), rms
