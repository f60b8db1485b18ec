"""Verify an export on its table's device: its model timed side by side with the dense model again.

The verdict stands on the measured speed-up of paired rounds, not on one absolute median: a
speed-up target is checked as a speed-up, a millisecond target as the measured ratio times the
dense model measured in the same window. Each verification is appended to export.json.
"""

from __future__ import annotations

from pathlib import Path

from prunesearch._objectives import Constraint
from prunesearch._reporter import QUIET, Reporter
from prunesearch.errors import PruneSearchError
from prunesearch.export._manifest import Verification, known_values, meets, read_manifest
from prunesearch.export._write import now
from prunesearch.graph._onnx import vocab_of
from prunesearch.oracle import TimingOptions

#: verify decides pass or fail: more rounds and a tighter error than a profile's
VERIFY_TIMING = TimingOptions(min_rounds=12, max_rounds=40, rel_se=0.002)


def verify_export(
    folder: Path,
    *,
    tolerance: float = 0.05,
    options: TimingOptions | None = None,
    loaded=None,
    reporter: Reporter = QUIET,
) -> Verification:
    """Measure ``folder``'s model beside the dense model under its table's conditions, against its target
    (or, without one, its predicted speed-up) within ``tolerance``; the verification is recorded. A
    TensorRT engine the export wrote is what is measured, through the table's TensorRT profiler. ``loaded``:
    the dense model where the caller holds it (else loaded by the export's model name)."""
    from prunesearch._io import load
    from prunesearch._models import load_model
    from prunesearch.oracle._measure import dense_graph, time_side_by_side
    from prunesearch.oracle.profilers import profiler_for

    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.conditions is None:
        raise PruneSearchError(
            f"{folder} was exported without a latency table: nothing says how to measure it; "
            "export from a run, or with --table"
        )
    against = manifest.target or (
        [Constraint(objective="speedup", limit=manifest.predicted["speedup"])]
        if "speedup" in manifest.predicted
        else []
    )
    if not against:
        raise PruneSearchError(f"{folder} has neither a target nor a prediction to verify against")
    conditions = manifest.conditions
    profiler = profiler_for(conditions.backend)
    try:
        profiler.check()
    except PruneSearchError as exc:
        raise type(exc)(
            f"{exc}; this export's table is for {conditions.backend} on {conditions.device}: run verify on that device"
        ) from None
    # the engine export wrote is what deploys, where the table's backend is the TensorRT one that runs it
    timed = folder / (manifest.engine if manifest.engine and conditions.backend == "tensorrt" else "model.onnx")
    if profiler.takes == "onnx" and not timed.is_file():
        raise PruneSearchError(f"{folder} has no {timed.name}; export with --to hf,onnx")
    if loaded is None:
        reporter.line(f"loading the dense model {manifest.model} as the reference")
        loaded = load_model(manifest.model)
    if loaded.weights_hash != conditions.model_hash:
        raise PruneSearchError(
            f"{manifest.model} here has weights {loaded.weights_hash}, the export was pruned from "
            f"{conditions.model_hash}: verify beside the model it was pruned from"
        )
    onnx = profiler.takes == "onnx"
    with reporter.bar("verify", "the export beside the dense model") as update:
        measured = time_side_by_side(
            {"export": timed if onnx else load(folder)},
            reference=dense_graph(loaded, conditions) if onnx else loaded.model,
            workload=conditions,
            vocab=vocab_of(loaded.model),
            options=options or VERIFY_TIMING,
            progress=lambda stage, done, total: update(completed=done, total=total, description=stage),
        )["export"]
    values = known_values(
        measured, predicted=manifest.predicted, exact={"params": manifest.params, "size_mb": manifest.size_mb}
    )
    verification = Verification(
        measured=measured,
        against=against,
        of="target" if manifest.target else "prediction",
        tolerance=tolerance,
        passed=meets(against, values, tolerance=tolerance),
        at=now(),
    )
    manifest.verifications.append(verification)
    manifest.save(folder)
    return verification
