"""Export a hand-written config: the same model a search would score for it, by default.

Units and output projections come from the level database a default search builds (Wanda ranking,
least-squares reconstruction on the default calibration text), so what ``export --model --config``
writes is what a search with that config would have scored; plain weight-magnitude pruning without
reconstruction only when asked for by name (``units="magnitude"``). With a table, the config is
predicted from it and, where its backend runs here on its device, measured beside the dense model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prunesearch._config import Config
from prunesearch._reporter import QUIET, Reporter
from prunesearch._workload import BYTES
from prunesearch.export._manifest import ExportManifest
from prunesearch.export._recovery import recovered
from prunesearch.export._write import check_formats, writable, write_export
from prunesearch.prune._apply import prune
from prunesearch.prune._recover import RecoveryOptions

Units = Literal["database", "magnitude"]


def export_config(
    model: str,
    config: Config,
    out: Path,
    *,
    formats: list[str],
    table: Path | None = None,
    units: Units = "database",
    recovery: RecoveryOptions = RecoveryOptions(),
    reporter: Reporter = QUIET,
) -> ExportManifest:
    """``config`` of ``model`` written to ``out`` (see the module docstring); with ``recovery.tokens``, the pruned
    model is distilled towards the dense one first, and its held-out quality before and after recorded."""
    from prunesearch._models import load_model
    from prunesearch._objectives import Metrics
    from prunesearch._pipeline import build_database, calibration_for
    from prunesearch.oracle import LatencyTable, Measurer, Oracle
    from prunesearch.oracle.profilers import profiler_for
    from prunesearch.prune._apply import MagnitudeSource
    from prunesearch.space import adapter_for

    writable(out)
    loaded = load_model(model)
    check_formats(loaded.model, formats)  # before the level database
    adapter = adapter_for(loaded.model)
    t = None if table is None else LatencyTable.load(table)
    ffn_step = t.conditions.ffn_step if t else 128
    space = adapter.space(ffn_step=ffn_step)
    space.validate(config)
    if units == "magnitude":
        calibration, source = calibration_for(loaded), MagnitudeSource(adapter, ffn_step=ffn_step)
    else:
        calibration, source = build_database(loaded, space, reporter=reporter)
    student = prune(loaded.model, config, source)
    quality, record = recovered(loaded, student, calibration, options=recovery, reporter=reporter)
    kept = {"pruned": student, "quality": quality, "recovery": record}
    if t is None:
        return write_export(loaded, config, out, formats=formats, source=source, **kept)
    c = t.conditions
    at_hand = profiler_for(c.backend).at_hand(c)
    oracle = Oracle(t, space, measurer=Measurer(loaded=loaded, conditions=c, source=source) if at_hand else None)
    genome = space.to_genome(config)
    metrics = Metrics(space=space, adapter=adapter, oracle=oracle, bytes_per_param=BYTES[c.precision])
    predicted = {name: float(v[0]) for name, v in metrics.of(metrics.predicted(), genome).items()}
    measured = None
    if at_hand:
        measured = oracle.measure(genome, stage="pick")[0].measurement
    else:
        reporter.line(f"not measured: the table is for {c.backend} on {c.device}, not at hand")
    return write_export(
        loaded,
        config,
        out,
        formats=formats,
        source=source,
        conditions=c,
        table=t.path,
        predicted=predicted,
        measured=measured,
        measurements=oracle.measurements,
        **kept,
    )
