"""Measured picks: which of a run's configs to export, decided by measurement, not by the table alone.

The search ranks configs by predicted latency, and an optimiser over predictions favours the ones
predicted a little too fast. So before export, the best candidates predicted within the limits are
exported and timed side by side with the dense model in one window, and the best one whose
*measured* speed-up (or milliseconds, at the dense model measured beside it) meets the limits with
confidence (the slow end of its 95% interval does) is the pick. Exact limits (parameters, size) hold
as predicted, energy as predicted from its table. The graph measured is the graph exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prunesearch.config import Config
from prunesearch.errors import PruneSearchError
from prunesearch.export.manifest import Candidate, Measured, known_values, meets
from prunesearch.objectives import OBJECTIVES, Constraint, parse_constraints
from prunesearch.oracle import Conditions, PairedMeasurement, TimingOptions, time_configs
from prunesearch.reporter import QUIET, Reporter

PICKS = "best (the run's target), fastest, or limits such as speedup>=2, latency<=8.5, params<=40e6 (comma-separated)"
#: the pick's window: a little longer than a profile's, it decides what ships
PICK_TIMING = TimingOptions(min_rounds=10, max_rounds=30, rel_se=0.003)


def limits_for(pick: str, *, run_constraints: list[Constraint]) -> list[Constraint] | None:
    """The limits ``pick`` names (None: ``fastest``, which has none)."""
    text = pick.strip()
    if text == "fastest":
        return None
    if text == "best":
        if not run_constraints:
            raise PruneSearchError(f"--pick best needs the run's target; this run has none: use {PICKS}")
        return run_constraints
    return parse_constraints(text)


def _column(trials: pd.DataFrame, name: str) -> pd.Series:
    if name not in trials:
        raise PruneSearchError(f"the run's configs were not predicted for {name} (its table has no such column)")
    return trials[name]


def _best(trials: pd.DataFrame, name: str) -> float:
    """The best value of objective ``name`` among the run's configs."""
    values = _column(trials, name)
    return float(values.min() if OBJECTIVES[name].direction == "minimize" else values.max())


def pick_candidates(trials: pd.DataFrame, limits: list[Constraint] | None) -> pd.DataFrame:
    """The configs that answer ``limits`` as predicted, best first: lowest loss on the final token budget
    (losses on other budgets do not compare), ties to the faster. Without limits: the fastest config."""
    if trials.empty:
        raise PruneSearchError("the run has no evaluated configs to export")
    if limits is None:
        return trials.loc[[trials.latency_ms.idxmin()]]
    final = trials[trials.tokens == trials.tokens.max()]
    ok = np.ones(len(final), dtype=bool)
    for c in limits:
        ok &= c.satisfied(_column(final, c.objective).to_numpy(dtype=float))
    within = final[ok]
    if within.empty:
        best = ", ".join(f"{c.objective} {c.of.format(_best(trials, c.objective))}" for c in limits)
        raise PruneSearchError(
            f"no evaluated config is predicted within {', '.join(c.describe() for c in limits)}; the best predicted "
            f"of the run: {best}"
        )
    return within.sort_values(["loss", "latency_ms"], kind="stable")


@dataclass(frozen=True)
class Pick:
    config: Config
    measured: PairedMeasurement
    #: the pick's predicted objectives (from its trial)
    predicted: dict[str, float]
    #: the graph that was measured, exported under the table's conditions
    graph: Path | None
    candidates: list[Candidate]


def predicted_of(row: pd.Series) -> dict[str, float]:
    return {n: float(row[n]) for n in OBJECTIVES if n != "loss" and n in row and pd.notna(row[n])}


def measured_pick(
    loaded,
    candidates: pd.DataFrame,
    *,
    limits: list[Constraint] | None,
    conditions: Conditions,
    source,
    workdir: Path,
    per_window: int = 5,
    windows: int = 2,
    tolerance: float = 0.0,
    options: TimingOptions = PICK_TIMING,
    reporter: Reporter = QUIET,
) -> Pick:
    """The best of ``candidates`` (``pick_candidates`` order) meeting ``limits`` as measured (within
    ``tolerance``): ``per_window`` candidates at a time timed side by side with the dense model, at most
    ``windows`` times. Refused, with what was measured, when none meets them."""
    records: list[Candidate] = []
    tried = 0
    for window in range(max(windows, 1)):
        batch = candidates.iloc[tried : tried + per_window]
        if batch.empty:
            break
        tried += len(batch)
        folder = workdir / f"window-{window}"
        names = {f"candidate-{tried - len(batch) + i}": row for i, (_, row) in enumerate(batch.iterrows())}
        label = f"{len(names)} candidates"
        with reporter.bar("measure", f"{label} beside the dense model") as update:
            measured = time_configs(
                loaded,
                {name: Config.from_dict(row.config) for name, row in names.items()},
                conditions=conditions,
                source=source,
                options=options,
                keep_graphs=folder,
                progress=lambda stage, done, total, label=label: update(
                    completed=done, total=total, description=f"{stage} {label}"
                ),
            )
        chosen = None
        for name, row in names.items():
            m, predicted = measured[name], predicted_of(row)
            # a pick must meet its limits with confidence: the slow end of its measurement's interval does
            known = known_values(m, predicted=predicted, exact={}, conservative=True)
            ok = limits is None or meets(limits, known, tolerance=tolerance)
            if ok and chosen is None:
                chosen = name
            records.append(
                Candidate(
                    config=row.config,
                    loss=float(row.loss) if "loss" in row and pd.notna(row.loss) else None,
                    predicted=predicted,
                    measured=Measured.of(m, backend=conditions.backend),
                    meets=ok,
                    chosen=name == chosen,
                )
            )
            misses = "" if ok else " - misses " + ", ".join(c.describe() for c in limits)
            reporter.line(
                f"  {name}: predicted {predicted.get('speedup', float('nan')):.3f}x, measured {m.describe()}{misses}"
            )
        if chosen is not None:
            graph = folder / f"{chosen}.onnx"
            return Pick(
                config=Config.from_dict(names[chosen].config),
                measured=measured[chosen],
                predicted=predicted_of(names[chosen]),
                graph=graph if graph.is_file() else None,
                candidates=records,
            )
    best = max(records, key=lambda r: r.measured.speedup)
    raise PruneSearchError(
        f"none of the {len(records)} best candidates measured within {', '.join(c.describe() for c in limits)} "
        f"beside the dense model (the fastest measured {best.measured.describe()}); search again with a larger "
        "target.margin, or export with --pick fastest or looser --pick limits"
    )
