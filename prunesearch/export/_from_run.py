"""Export a run's pick: predicted by the run's oracle, measured beside the dense model, then written."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from prunesearch._objectives import Constraint
from prunesearch._pipeline import PreparedSearch, prepare
from prunesearch._reporter import QUIET, Reporter
from prunesearch._run import Run
from prunesearch.export._manifest import ExportManifest
from prunesearch.export._pick import limits_for, measured_pick, pick_candidates
from prunesearch.export._recovery import recovered
from prunesearch.export._write import check_formats, writable, write_export
from prunesearch.prune._apply import prune
from prunesearch.prune._recover import RecoveryOptions
from prunesearch.search import Budget


def export_from_run(
    run: Run,
    *,
    pick: str,
    out: Path,
    formats: list[str],
    prepared: PreparedSearch | None = None,
    per_window: int = 5,
    windows: int = 2,
    tolerance: float = 0.0,
    recovery: RecoveryOptions | None = None,
    reporter: Reporter = QUIET,
) -> ExportManifest:
    """Export the run's pick (``pick``): with limits (``best``: the run's target; or written out, such
    as ``params<=40e6``), the best candidate of the front meeting them as measured beside the dense model;
    ``fastest``: the fastest predicted config, measured all the same. The pick is then distilled towards the
    dense model (``recovery``, default the run's spec's) and scored on held-out text before and after; its graph
    keeps the shapes measured. ``prepared``: the run's prepared search where the caller holds it (its model,
    oracle and level database are used as they are), else prepared again from the run's table and
    measurements."""
    writable(out)  # before anything slow
    limits = limits_for(pick, run_constraints=run.constraints())
    if prepared is None:
        prepared = prepare(run.spec, table=run.table(), measurements=run.measurements(), reporter=reporter)
    check_formats(prepared.loaded.model, formats)  # before the level database and the measurements
    candidates = pick_candidates(
        run.trials(oracle=prepared.oracle), limits, count=per_window, held_within=_held_within(prepared.budget, limits)
    )
    calibration, database = prepared.database(reporter=reporter)
    asked = ", ".join(c.describe() for c in limits) if limits else "no limit (the fastest)"
    reporter.line(
        f"measuring {min(per_window, len(candidates))} of {len(candidates)} candidates of the front predicted "
        f"within {asked} beside the dense model"
    )
    oracle = prepared.oracle
    before = len(oracle.measurements)
    with tempfile.TemporaryDirectory(prefix="prunesearch-pick-") as work:
        try:
            chosen = measured_pick(
                prepared,
                candidates,
                limits=limits,
                source=database,
                workdir=Path(work),
                per_window=per_window,
                windows=windows,
                tolerance=tolerance,
                reporter=reporter,
            )
        finally:  # what was measured is kept with the run, picked or not
            run.add_measurements(oracle.measurements[before:])
        student = prune(prepared.loaded.model, chosen.config, database)
        options = run.spec.recovery if recovery is None else recovery
        quality, record = recovered(
            prepared.loaded, student, calibration, options=options, sts=run.spec.evaluation.sts, reporter=reporter
        )
        return write_export(
            prepared.loaded,
            chosen.config,
            out,
            formats=formats,
            source=database,
            conditions=oracle.conditions,
            table=prepared.choice.path,
            target=limits or [],
            predicted=chosen.predicted,
            measured=None if chosen.measured is None else chosen.measured.measurement,
            candidates=chosen.candidates,
            measurements=oracle.measurements,
            graph=None if record else chosen.graph,  # recovery changed the weights: export them (same shapes)
            pruned=student,
            quality=quality,
            recovery=record,
        )


def _held_within(budget: Budget, limits: list[Constraint] | None):
    """genomes -> whether ``limits`` hold as the run's budget holds its own (margin, confidence in the oracle)."""
    if limits is None:
        return None

    def within(genomes: np.ndarray) -> np.ndarray:
        with budget.held_to(limits):
            return budget.feasible(genomes)

    return within
