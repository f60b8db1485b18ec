"""Export a run's pick: predicted by the run's own table, measured beside the dense model, then written."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prunesearch.export.manifest import ExportManifest, Limit, Predicted
from prunesearch.export.pick import limit_for, measured_pick, pick_candidates
from prunesearch.export.write import write_export, writable
from prunesearch.reporter import QUIET, Reporter
from prunesearch.run import Run


def run_target(run: Run) -> Limit | None:
    """The run's target as a limit: the spec's speed-up where it gave one, else its milliseconds."""
    a = run.attrs
    if a.get("target_speedup") is not None:
        return Limit(speedup=a["target_speedup"])
    return Limit(latency_ms=a["target_ms"]) if a.get("target_ms") is not None else None


def export_from_run(
    run: Run,
    *,
    pick: str,
    out: Path,
    formats: list[str],
    per_window: int = 5,
    windows: int = 2,
    tolerance: float = 0.0,
    reporter: Reporter = QUIET,
) -> ExportManifest:
    """Export the run's pick (``export.pick``): with a limit (``best``, ``latency<=X``, ``speedup>=X``), the
    best candidate whose measured speed-up beside the dense model meets it; ``fastest``: the fastest
    predicted config, measured all the same. The graph measured is the one written."""
    from prunesearch.pipeline import build_database

    writable(out)  # before anything slow
    limit = limit_for(pick, run_target=run_target(run))
    prepared = run.prepare(reporter=reporter)
    reference_ms = prepared.target.reference_ms
    candidates = pick_candidates(run.trials(), limit, reference_ms=reference_ms)
    _, database = build_database(prepared, reporter=reporter)
    conditions = prepared.predictor.table.conditions
    reporter.line(f"measuring the best {min(per_window, len(candidates))} of {len(candidates)} candidates predicted "
                  f"within {limit.describe() if limit else 'no limit (fastest)'} beside the dense model")
    with tempfile.TemporaryDirectory(prefix="prunesearch-pick-") as work:
        chosen = measured_pick(
            prepared.loaded, candidates, limit=limit, conditions=conditions, source=database, workdir=Path(work),
            reference_ms=reference_ms, per_window=per_window, windows=windows, tolerance=tolerance, reporter=reporter,
        )
        ratio = prepared.predictor.config_ratio(chosen.config)
        return write_export(
            prepared.loaded, chosen.config, out, formats=formats, source=database, conditions=conditions,
            table=prepared.table.path, target=limit,
            predicted=Predicted(speedup=1.0 / ratio, latency_ms=ratio * reference_ms),
            measured=chosen.measured, candidates=chosen.candidates, graph=chosen.graph,
        )
