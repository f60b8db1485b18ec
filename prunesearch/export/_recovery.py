"""Recovery of the exported model, and its quality before and after, as export records them."""

from __future__ import annotations

from dataclasses import asdict

from torch import nn

from prunesearch._quality import HeldOut
from prunesearch._reporter import QUIET, Reporter
from prunesearch.prune._recover import RecoveryOptions, recover


def recovered(
    loaded,
    student: nn.Module,
    calibration,
    *,
    options: RecoveryOptions,
    reporter: Reporter = QUIET,
) -> tuple[dict, dict | None]:
    """Score ``student`` on held-out text (in-domain and out-of-domain), distil it towards the dense model
    for ``options.tokens`` (in place; none: no training), score it again. Returns (quality by text and
    stage, the recovery's record or None)."""
    held = HeldOut(loaded, calibration)
    quality = {name: {"dense": held.dense[name]} for name in held.texts}
    for name, scores in held(student).items():
        quality[name]["pruned"] = scores
    record = None
    if options.tokens:
        result = recover(
            student, loaded.model, calibration, is_decoder=loaded.is_decoder, options=options, reporter=reporter
        )
        for name, scores in held(student).items():
            quality[name]["recovered"] = scores
        record = {**options.model_dump(), **asdict(result)}
    metric = held.metric
    for name, stages in quality.items():
        course = " -> ".join(f"{stage} {values[metric]:.4g}" for stage, values in stages.items())
        reporter.line(f"{name} held-out {metric}: {course}")
    return quality, record
