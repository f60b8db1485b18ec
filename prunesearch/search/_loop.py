"""Measurement in the loop: the hardware corrects the oracle where the search is looking.

However well a table is denoised, the configs an optimiser picks are the ones where it is most wrong, and how
wrong differs per machine. So every ``every`` evaluations (and once when the algorithm ends) the search's best
candidates not measured yet are exported and timed side by side with the dense model, in the same clean child
process every measurement uses, and the oracle's correction is refitted on every config measured so far; from
then on every prediction the search makes is the corrected one, so the search itself moves to where the target
is really met. Windows are stored in the run store: a resumed search takes them in again at the point they
ran instead of measuring again, so it replays the decisions it made.
"""

from __future__ import annotations

import numpy as np

from prunesearch._reporter import QUIET, Reporter
from prunesearch.oracle import MeasuredConfig, TimingOptions

#: a window in the loop: a few candidates, settled a little faster than a pick (the pick measures again)
LOOP_TIMING = TimingOptions(min_rounds=6, max_rounds=16)


class MeasurementLoop:
    def __init__(
        self, *, every: int, configs: int, options: TimingOptions | None = None, reporter: Reporter = QUIET
    ) -> None:
        self.every = every
        self.configs = configs
        self.options = options or LOOP_TIMING
        self.reporter = reporter
        self.windows = 0  # windows this search ran (or replayed)

    def due(self, evaluations: int) -> bool:
        return evaluations >= (self.windows + 1) * self.every

    def run(self, problem, *, final: bool = False) -> list[MeasuredConfig]:
        """One window: its stored configs taken in again, or the best candidates measured now and stored."""
        oracle = problem.oracle
        window = f"{oracle.next_window:03d}"
        self.windows += 1
        stored = problem.store.measurements(window)
        if stored is not None:
            records = [MeasuredConfig.model_validate(r) for r in stored]
            oracle.add(records)
            return records
        genomes = self.candidates(problem)
        records = []
        if len(genomes):
            what = "at the end of the search" if final else f"after {problem.evaluations} evaluations"
            with self.reporter.bar("measure", f"{len(genomes)} candidates {what}") as update:
                records = oracle.measure(
                    genomes,
                    stage="search",
                    evaluations=problem.evaluations,
                    options=self.options,
                    progress=lambda stage, done, total: update(completed=done, total=total, description=stage),
                )
            self.reporter.line(describe(records, oracle))
        problem.store.add_measurements(window, [r.model_dump(mode="json") for r in records])
        return records

    def candidates(self, problem) -> np.ndarray:
        """The search's best configs not measured yet, at most ``configs``: those within the constraints first,
        on the largest token budget first, lowest loss first (losses on one budget compare)."""
        done = {m.genome for m in problem.oracle.measurements}
        seen: dict[tuple[int, ...], tuple[int, float]] = {}
        for genome, tokens, evaluation in problem.store.items():
            if genome not in done and (genome not in seen or tokens > seen[genome][0]):
                seen[genome] = (tokens, evaluation.loss)
        if not seen:
            return np.zeros((0, len(problem.space.genome_upper)), dtype=np.int64)
        genomes = np.array(list(seen), dtype=np.int64)
        feasible = problem.feasible(genomes)
        order = sorted(
            range(len(genomes)),
            key=lambda i: (not feasible[i], -seen[tuple(genomes[i])][0], seen[tuple(genomes[i])][1]),
        )
        return genomes[order[: self.configs]]


def describe(records: list[MeasuredConfig], oracle) -> str:
    """One line per window: what the table and the correction predicted for each config, what it measured."""
    if not records:
        return "no candidates to measure"
    parts = [
        f"{1 / r.table_ratio:.3f}x table, {1 / r.corrected_ratio:.3f}x corrected, {r.measurement.speedup:.3f}x measured"
        for r in records
    ]
    genomes = np.array([r.genome for r in records])
    now = oracle.speedup(genomes)
    return (
        f"window {records[0].window}: " + "; ".join(parts) + f" (corrected now: {', '.join(f'{v:.3f}x' for v in now)})"
    )
