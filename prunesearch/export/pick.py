"""Measured picks: which of a run's configs to export, decided by measurement, not by the table alone.

The search ranks configs by predicted latency, and an optimiser over predictions favours the ones
predicted a little too fast. So before export, the best candidates predicted within the limit are
exported and timed side by side with the dense model in one window, and the best one whose
*measured* speed-up (or milliseconds, at the dense model measured beside it) meets the limit is
the pick. The graph measured is the graph exported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from prunesearch.config import Config
from prunesearch.errors import PruneSearchError
from prunesearch.export.manifest import Candidate, Limit, Measured
from prunesearch.oracle import Conditions, PairedMeasurement, TimingOptions, time_configs
from prunesearch.reporter import QUIET, Reporter

PICKS = "best (the run's target), fastest, latency<=MS or speedup>=X"
#: the pick's window: a little longer than a profile's, it decides what ships
PICK_TIMING = TimingOptions(min_rounds=10, max_rounds=30, rel_se=0.003)


def limit_for(pick: str, *, run_target: Limit | None) -> Limit | None:
    """The limit ``pick`` names (None: ``fastest``, which has none)."""
    text = pick.replace(" ", "")
    if text == "fastest":
        return None
    if text == "best":
        if run_target is None:
            raise PruneSearchError("--pick best needs the run's target; this run has none: use latency<=MS or speedup>=X")
        return run_target
    if (m := re.fullmatch(r"latency<=([0-9.]+)", text)) is not None:
        return Limit(latency_ms=float(m.group(1)))
    if (m := re.fullmatch(r"speedup>=([0-9.]+)", text)) is not None:
        return Limit(speedup=float(m.group(1)))
    raise PruneSearchError(f"--pick {pick!r}: use {PICKS} (e.g. latency<=8.5 or speedup>=2)")


def pick_candidates(trials: pd.DataFrame, limit: Limit | None, *, reference_ms: float) -> pd.DataFrame:
    """The configs that answer ``limit`` as predicted, best first: lowest loss on the final token budget
    (losses on other budgets do not compare), ties to the faster. Without a limit: the fastest config.
    ``reference_ms``: the dense model's milliseconds the run's predictions are scaled by."""
    if trials.empty:
        raise PruneSearchError("the run has no evaluated configs to export")
    if limit is None:
        return trials.loc[[trials.latency_ms.idxmin()]]
    final = trials[trials.tokens == trials.tokens.max()]
    within = final[final.latency_ms <= limit.ms_at(reference_ms) * (1 + 1e-9)]
    if within.empty:
        fastest = trials.latency_ms.min()
        raise PruneSearchError(
            f"no evaluated config is predicted within {limit.describe()}; the fastest is predicted at {fastest:.3f} ms "
            f"({reference_ms / fastest:.2f}x)")
    return within.sort_values(["loss", "latency_ms"], kind="stable")


@dataclass(frozen=True)
class Pick:
    config: Config
    measured: PairedMeasurement
    #: the graph that was measured, exported under the table's conditions
    graph: Path | None
    candidates: list[Candidate]


def measured_pick(
    loaded,
    candidates: pd.DataFrame,
    *,
    limit: Limit | None,
    conditions: Conditions,
    source,
    workdir: Path,
    reference_ms: float,
    per_window: int = 5,
    windows: int = 2,
    tolerance: float = 0.0,
    options: TimingOptions = PICK_TIMING,
    reporter: Reporter = QUIET,
) -> Pick:
    """The best of ``candidates`` (``pick_candidates`` order) whose measured speed-up meets ``limit``
    (within ``tolerance``): ``per_window`` candidates at a time timed side by side with the dense model,
    at most ``windows`` times. Refused, with what was measured, when none meets it."""
    records: list[Candidate] = []
    tried = 0
    for window in range(max(windows, 1)):
        batch = candidates.iloc[tried:tried + per_window]
        if batch.empty:
            break
        tried += len(batch)
        folder = workdir / f"window-{window}"
        names = {f"candidate-{tried - len(batch) + i}": row for i, (_, row) in enumerate(batch.iterrows())}
        with reporter.bar("measure", f"{len(names)} candidates beside the dense model") as update:
            measured = time_configs(
                loaded, {name: Config.from_dict(row.config) for name, row in names.items()}, conditions=conditions,
                source=source, options=options, keep_graphs=folder,
                progress=lambda stage, done, total: update(completed=done, total=total, description=f"{stage} {len(names)} candidates"))
        chosen = None
        for name, row in names.items():
            m = measured[name]
            meets = limit is None or limit.met(m, tolerance=tolerance)
            if meets and chosen is None:
                chosen = name
            records.append(Candidate(
                config=row.config, loss=float(row.loss) if "loss" in row and pd.notna(row.loss) else None,
                predicted_speedup=reference_ms / float(row.latency_ms), measured=Measured.of(m, backend=conditions.backend),
                meets=meets, chosen=name == chosen))
            reporter.line(f"  {name}: predicted {reference_ms / float(row.latency_ms):.3f}x, measured {m.describe()}"
                          f"{'' if meets else ' - misses ' + limit.describe()}")
        if chosen is not None:
            return Pick(config=Config.from_dict(names[chosen].config), measured=measured[chosen],
                        graph=folder / f"{chosen}.onnx" if (folder / f"{chosen}.onnx").is_file() else None,
                        candidates=records)
    best = max(records, key=lambda r: r.measured.speedup)
    raise PruneSearchError(
        f"none of the {len(records)} best candidates measured within {limit.describe()} beside the dense model "
        f"(the fastest measured {best.measured.describe()}); search again with a larger target.margin, or export "
        "with --pick fastest or a looser --pick limit")
