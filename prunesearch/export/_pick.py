"""Measured picks: which of a run's configs to export, decided by measurement, not by the table alone.

The search ranks configs by predicted latency, and an optimiser over predictions favours the ones
predicted a little too fast. So before export, candidates from the whole front are exported and timed side
by side with the dense model in one window: the run's configs the oracle (the table, corrected by every
config measured during the search) predicts within the limits, the front of loss against them, spread from
the target to well beyond it. The pick is the best-quality one whose *measured* speed-up (or milliseconds,
at the dense model measured beside it) meets the limits with confidence (the slow end of its 95% interval
does). Exact limits (parameters, size) hold as predicted, energy as predicted from its table. The graph
measured is the graph exported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prunesearch._config import Config
from prunesearch._objectives import OBJECTIVES, Constraint, parse_constraints
from prunesearch._pareto import pareto_mask
from prunesearch._reporter import QUIET, Reporter
from prunesearch.errors import PruneSearchError
from prunesearch.export._manifest import Candidate, known_values, meets
from prunesearch.oracle import MeasuredConfig, Measurement, TimingOptions

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


def _best(trials: pd.DataFrame, name: str) -> float:
    values = trials[name]
    return float(values.min() if OBJECTIVES[name].direction == "minimize" else values.max())


def _spread(reach: np.ndarray, n: int) -> list[int]:
    """``n`` positions along a front (best quality first) whose points are predicted ``reach`` past the limits,
    spaced by that reach rather than by position, denser at the target: the best point, then the points
    nearest ``low + span * (i / (n - 1)) ** 2``, up to the farthest (the fallback). A front crowded at the
    target, as a search leaves it, then still offers candidates a window's noise away from the limit."""
    if len(reach) <= n:
        return list(range(len(reach)))
    low, span = reach.min(), reach.max() - reach.min()
    chosen = [0]
    for goal in low + span * (np.arange(1, n) / (n - 1)) ** 2:
        free = [i for i in range(len(reach)) if i not in chosen]
        chosen.append(min(free, key=lambda i: (abs(reach[i] - goal), i)))
    return sorted(chosen)


def pick_candidates(
    trials: pd.DataFrame,
    limits: list[Constraint] | None,
    *,
    count: int,
    held_within: Callable[[np.ndarray], np.ndarray] | None = None,
) -> pd.DataFrame:
    """The configs to measure, in the order they are tried, from ``trials`` as the oracle predicts them now
    (``Run.trials(oracle=...)``). Without limits: the fastest config. With them: the run's configs on the final
    token budget (losses on other budgets do not compare) predicted within the limits; the front of loss
    against the limited objectives among them, spread from the target to its far end (``count`` of them);
    then the rest of that front and the other configs within, best loss first. ``held_within`` (genomes -> whether
    the limits hold with the oracle's uncertainty in reserve, as ``Budget.feasible`` says): those configs are
    ordered so first, the rest after them, so a window is not spent on configs within the noise of the target."""
    if trials.empty:
        raise PruneSearchError("the run has no evaluated configs to export")
    if limits is None:
        return trials.sort_values("latency_ms", kind="stable").head(1)
    final = trials[trials.tokens == trials.tokens.max()].drop_duplicates("layers")
    for c in limits:
        if c.objective not in final:
            raise PruneSearchError(f"the run's configs cannot be predicted for {c.objective} (its table has none)")
    ok = np.ones(len(final), dtype=bool)
    for c in limits:
        ok &= c.satisfied(final[c.objective].to_numpy(dtype=float))
    within = final[ok].sort_values(["loss", "latency_ms"], kind="stable")
    if within.empty:
        best = ", ".join(f"{c.objective} {c.of.format(_best(final, c.objective))}" for c in limits)
        raise PruneSearchError(
            f"no evaluated config is predicted within {', '.join(c.describe() for c in limits)}; the best predicted "
            f"of the run: {best}"
        )
    if held_within is None:
        return _front_first(within, limits, count=count)
    firm = held_within(np.array(within.genome.tolist(), dtype=np.int64))
    if not firm.any():
        return _front_first(within, limits, count=count)
    sure = _front_first(within[firm], limits, count=count)
    return pd.concat([sure, _front_first(within[~firm], limits, count=count)]) if (~firm).any() else sure


def _front_first(within: pd.DataFrame, limits: list[Constraint], *, count: int) -> pd.DataFrame:
    """``within`` (best loss first) reordered: ``count`` points spread along its front of loss against the
    limited objectives, then the rest of the front, then the other configs."""
    points = np.column_stack(
        [within.loss.to_numpy(dtype=float)]
        + [c.of.minimised(within[c.objective].to_numpy(dtype=float)) for c in limits]
    )
    front = within[pareto_mask(points)]
    first = front.iloc[_spread(_reach(front, limits), count)]
    rest = pd.concat([front.drop(first.index), within.drop(front.index)])
    return pd.concat([first, rest])


def _reach(front: pd.DataFrame, limits: list[Constraint]) -> np.ndarray:
    """How far each config is predicted past the limits: its least log-ratio to a limit over the measured
    objectives (those a window's noise can push back over it), or over the exact ones where none is measured."""
    measured = [c for c in limits if not c.of.exact] or limits
    return np.min(
        [-c.of.minimised(np.log(front[c.objective].to_numpy(dtype=float) / c.limit)) for c in measured], axis=0
    )


@dataclass(frozen=True)
class Pick:
    config: Config
    #: None where the table's device is not at hand
    measured: MeasuredConfig | None
    #: the pick's predicted objectives, as the oracle predicted them before the pick's window
    predicted: dict[str, float]
    #: the graph that was measured, exported under the table's conditions
    graph: Path | None
    candidates: list[Candidate]


def predicted_of(row: pd.Series) -> dict[str, float]:
    return {n: float(row[n]) for n in OBJECTIVES if n != "loss" and n in row and pd.notna(row[n])}


def measured_pick(
    prepared,
    candidates: pd.DataFrame,
    *,
    limits: list[Constraint] | None,
    source,
    workdir: Path,
    per_window: int = 5,
    windows: int = 2,
    tolerance: float = 0.0,
    options: TimingOptions | None = None,
    reporter: Reporter = QUIET,
) -> Pick:
    """The best of ``candidates`` (``pick_candidates`` order) meeting ``limits`` as measured (within
    ``tolerance``): ``per_window`` candidates at a time timed side by side with the dense model by the prepared
    search's oracle (which takes them in; ``options``, default ``PICK_TIMING``), at most ``windows`` times.
    A candidate better than every one that met the limits, whose measured value meets them but not its
    interval's slow end, is measured once more in the next window and judged on both windows' rounds
    pooled: a noisy window must not push the pick to the fallback. So are the candidates not measured yet that
    are expected to meet the limits with a better loss than the pick so far (``_unmeasured``). Refused, with what
    was measured and what would get further, when none meets them."""
    oracle = prepared.oracle
    if not oracle.can_measure:  # a table of a device not at hand: nothing can be measured here
        row = candidates.iloc[0]
        c = oracle.conditions
        reporter.line(
            f"not measured: the table is for {c.backend} on {c.device}, not at hand; exporting the best config "
            "predicted within the limits (measure it there with `prunesearch verify`)"
        )
        return Pick(
            config=Config.from_dict(row.config), measured=None, predicted=predicted_of(row), graph=None, candidates=[]
        )
    judged: dict[int, _Judged] = {}  # by position in ``candidates``: the latest judgement of each one measured
    records: list[Candidate] = []
    again, best = [], None
    fresh = list(range(len(candidates)))  # the candidates not measured yet that the next window takes, in order
    for window in range(max(windows, 1)):
        positions = again[:per_window]
        positions += fresh[: per_window - len(positions)]
        if not positions:
            break
        batch = candidates.iloc[positions]
        folder = workdir / f"window-{window}"
        label = f"{len(batch)} candidates"
        with reporter.bar("measure", f"{label} beside the dense model") as update:
            done = oracle.measure(
                np.array(batch.genome.tolist(), dtype=np.int64),
                stage="pick",
                source=source,
                options=options or PICK_TIMING,
                keep_graphs=folder,
                progress=lambda stage, n, total, label=label: update(
                    completed=n, total=total, description=f"{stage} {label}"
                ),
            )
        for i, (position, record) in enumerate(zip(positions, done)):
            row = batch.iloc[i]
            windows_of = _pick_windows(oracle, record)
            pooled = record.model_copy(update={"measurement": Measurement.pooled([m.measurement for m in windows_of])})
            verdict = _Judged.of(
                pooled,
                row,
                limits=limits,
                tolerance=tolerance,
                position=position,
                windows=len(windows_of),
                graph=folder / f"config-{i}.onnx",
            )
            judged[position] = verdict
            records.append(
                Candidate(
                    config=row.config,
                    loss=_loss(row),
                    predicted=verdict.predicted,
                    measured=pooled,
                    meets=verdict.meets,
                )
            )
            over = f" ({len(windows_of)} windows pooled)" if len(windows_of) > 1 else ""
            misses = "" if verdict.meets else " - misses " + ", ".join(c.describe() for c in limits)
            reporter.line(
                f"  {Config.from_dict(row.config)}: table {row.table_speedup:.3f}x, corrected "
                f"{verdict.predicted.get('speedup', float('nan')):.3f}x, measured "
                f"{pooled.measurement.describe()}{over}{misses}"
            )
        met = [j for j in judged.values() if j.meets]
        best = min(met, key=lambda j: j.rank, default=None)
        again = [
            p
            for p, j in sorted(judged.items(), key=lambda item: item[1].rank)
            if j.maybe and j.windows == 1 and (best is None or j.rank < best.rank)
        ]
        fresh = _unmeasured(candidates, judged, limits, tolerance=tolerance, beating=best)
        if best is not None and not again and not fresh:
            break
    if best is None:
        raise PruneSearchError(_none_met(records, limits))
    chosen_at = max(i for i, r in enumerate(records) if r.measured.genome == best.record.genome)
    records[chosen_at] = records[chosen_at].model_copy(update={"chosen": True})
    row = candidates.iloc[best.position]
    return Pick(
        config=Config.from_dict(row.config),
        measured=best.record,
        predicted=best.predicted,
        graph=best.graph if best.graph is not None and best.graph.is_file() else None,
        candidates=records,
    )


def _unmeasured(
    candidates: pd.DataFrame,
    judged: dict[int, _Judged],
    limits: list[Constraint] | None,
    *,
    tolerance: float,
    beating: _Judged | None,
) -> list[int]:
    """Positions of ``candidates`` not measured yet, for the next window: those expected to meet ``limits`` first,
    their predicted speed-up scaled by the windows' slow end of measured / predicted (the median over what they
    measured: a search's own measurements lean fast, so a pick window often finds every candidate a few percent
    slower than corrected). ``beating``: the pick so far; then only the candidates expected to meet the limits
    with a better loss are left, so a pick found far out is followed by the better candidates between it and the
    target, not by more at the target."""
    left = [p for p in range(len(candidates)) if p not in judged]
    if limits is None:
        return left
    shares = [
        j.record.measurement.speedup_interval()[0] / j.predicted["speedup"]
        for j in judged.values()
        if "speedup" in j.predicted
    ]
    share = float(np.median(shares)) if shares else 1.0

    def expected(position: int) -> bool:
        values = predicted_of(candidates.iloc[position])
        if "speedup" in values:
            values["speedup"] *= share
        if "latency_ms" in values:
            values["latency_ms"] /= share
        return meets(limits, values, tolerance=tolerance)

    likely = [p for p in left if expected(p)]
    if beating is None:
        return likely + [p for p in left if p not in likely]
    return [p for p in likely if (_loss_rank(candidates.iloc[p]), p) < beating.rank]


def _pick_windows(oracle, record: MeasuredConfig) -> list[MeasuredConfig]:
    """Every pick window's measurement of ``record``'s config (the search's own are left out: the search chose
    its configs by them, so they lean fast)."""
    return [m for m in oracle.measured(record.genome) if m.stage == "pick"]


@dataclass(frozen=True)
class _Judged:
    """A candidate's measurement against the limits: ``meets`` them at its interval's slow end, or ``maybe``
    (its measured value meets them, its interval does not: worth another window)."""

    position: int
    rank: tuple[float, int]  # (loss, position): the best quality first
    record: MeasuredConfig
    predicted: dict[str, float]
    meets: bool
    maybe: bool
    windows: int  # pick windows it was measured in
    graph: Path | None = None

    @classmethod
    def of(
        cls,
        record: MeasuredConfig,
        row: pd.Series,
        *,
        limits,
        tolerance: float,
        position: int,
        windows: int,
        graph: Path | None,
    ) -> _Judged:
        m, predicted = record.measurement, predicted_of(row)
        if limits is None:
            sure, maybe = True, False
        else:
            sure = meets(limits, known_values(m, predicted=predicted, exact={}, conservative=True), tolerance=tolerance)
            maybe = not sure and meets(limits, known_values(m, predicted=predicted, exact={}), tolerance=tolerance)
        return cls(
            position=position,
            rank=(_loss_rank(row), position),
            record=record,
            predicted=predicted,
            meets=sure,
            maybe=maybe,
            windows=windows,
            graph=graph,
        )


def _loss(row: pd.Series) -> float | None:
    return float(row.loss) if "loss" in row and pd.notna(row.loss) else None


def _loss_rank(row: pd.Series) -> float:
    """A candidate's loss as ranked, best first (none: last)."""
    loss = _loss(row)
    return float("inf") if loss is None else loss


def _none_met(records: list[Candidate], limits: list[Constraint]) -> str:
    """What was measured, the best of it, and what would get further."""
    best = max(records, key=lambda r: r.measured.measurement.speedup_low)
    m = best.measured.measurement
    asked = ", ".join(c.describe() for c in limits)
    low = f"speedup>={np.floor(m.speedup_low * 1000) / 1000:.3f}"
    return (
        f"none of the {len(records)} candidates measured within {asked} with confidence beside the dense model; the "
        f"best measured {Config.from_dict(best.config)} at {m.describe()}. To get further: search again with a "
        "larger target.confidence or target.margin (or more measure.configs, so the loop corrects more of the "
        f"front), or export what was measured with `--pick {low}`"
    )
