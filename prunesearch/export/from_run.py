"""Export a run's pick: predicted by the run's own table, measured beside the dense model, then written."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prunesearch.export.manifest import ExportManifest
from prunesearch.export.pick import limits_for, measured_pick, pick_candidates
from prunesearch.export.recovery import recovered
from prunesearch.export.write import writable, write_export
from prunesearch.prune.apply import prune
from prunesearch.prune.recover import RecoveryOptions
from prunesearch.reporter import QUIET, Reporter
from prunesearch.run import Run


def export_from_run(
    run: Run,
    *,
    pick: str,
    out: Path,
    formats: list[str],
    per_window: int = 5,
    windows: int = 2,
    tolerance: float = 0.0,
    recovery: RecoveryOptions | None = None,
    reporter: Reporter = QUIET,
) -> ExportManifest:
    """Export the run's pick (``export.pick``): with limits (``best``: the run's target; or written out, such
    as ``params<=40e6``), the best candidate meeting them as measured beside the dense model; ``fastest``: the
    fastest predicted config, measured all the same. The pick is then distilled towards the dense model
    (``recovery``, default the run's spec's) and scored on held-out text before and after; its graph keeps
    the shapes measured."""
    from prunesearch.pipeline import prepare, prepared_database

    writable(out)  # before anything slow
    limits = limits_for(pick, run_constraints=run.constraints())
    candidates = pick_candidates(run.trials(), limits)
    prepared = prepare(run.spec, table=run.table(), reporter=reporter)
    calibration, database = prepared_database(prepared, reporter=reporter)
    conditions = prepared.predictor.table.conditions
    asked = ", ".join(c.describe() for c in limits) if limits else "no limit (the fastest)"
    reporter.line(
        f"measuring the best {min(per_window, len(candidates))} of {len(candidates)} candidates predicted "
        f"within {asked} beside the dense model"
    )
    with tempfile.TemporaryDirectory(prefix="prunesearch-pick-") as work:
        chosen = measured_pick(
            prepared.loaded,
            candidates,
            limits=limits,
            conditions=conditions,
            source=database,
            workdir=Path(work),
            per_window=per_window,
            windows=windows,
            tolerance=tolerance,
            reporter=reporter,
        )
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
            conditions=conditions,
            table=prepared.table.path,
            target=limits or [],
            predicted=chosen.predicted,
            measured=chosen.measured,
            candidates=chosen.candidates,
            graph=None if record else chosen.graph,  # recovery changed the weights: export them (same shapes)
            pruned=student,
            quality=quality,
            recovery=record,
        )
