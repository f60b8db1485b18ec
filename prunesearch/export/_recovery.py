"""Reconstruction and recovery of the exported model, and its quality before and after, as export records them."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from torch import nn

from prunesearch._quality import HeldOut, SentencePairs
from prunesearch._reporter import QUIET, Reporter
from prunesearch.prune._recover import RecoveryOptions, recover, recovery_batches

#: what the quality lines say where no STS pairs file was given
NO_STS = "STS not evaluated (no pairs file)"


def recovered(
    loaded,
    student: nn.Module,
    calibration,
    *,
    options: RecoveryOptions,
    sts: Path | None = None,
    reporter: Reporter = QUIET,
) -> tuple[dict, dict | None]:
    """Score ``student`` on held-out text (in-domain and out-of-domain; an encoder also on the STS pairs file
    ``sts``), refit it layer by layer on its own inputs towards the dense model (``options.reconstruction``),
    distil it towards the dense model for ``options.tokens`` (both in place; none: no training), and score it
    after each. Returns (quality by held-out set and stage: "pruned", "reconstructed", "recovered"; the record
    of what was done, or None where nothing was)."""
    from prunesearch.prune._calibration import first_tokens
    from prunesearch.prune._reconstruct import refit_sequentially

    pairs = None if sts is None else SentencePairs.read(sts)
    held = HeldOut(loaded, calibration, sts=pairs)
    if pairs is None and not loaded.is_decoder:
        reporter.line(NO_STS)
    quality = {name: {"dense": scores} for name, scores in held.dense.items()}

    def score(stage: str) -> None:
        for name, scores in held(student).items():
            quality[name][stage] = scores

    score("pruned")
    record: dict = {}
    is_decoder = loaded.is_decoder
    refit = options.reconstruction
    if refit.budget(is_decoder=is_decoder):
        per_pass = refit.rows_per_pass(is_decoder=is_decoder)
        batches = recovery_batches(calibration, options=options, is_decoder=is_decoder, batch=per_pass)
        rows = first_tokens(batches, refit.budget(is_decoder=is_decoder))
        result = refit_sequentially(student, loaded.model, rows, damp=refit.damp, reporter=reporter)
        reporter.line(f"reconstructed layer by layer: {result.describe()}")
        record["reconstruction"] = {**refit.model_dump(), "micro_batch": per_pass, **asdict(result)}
        score("reconstructed")
    if options.tokens:
        result = recover(student, loaded.model, calibration, is_decoder=is_decoder, options=options, reporter=reporter)
        effective = {  # what "none" meant for this model
            "micro_batch": options.rows_per_pass(is_decoder=is_decoder),
            "checkpointing": options.recomputes(is_decoder=is_decoder),
        }
        record |= {**options.model_dump(mode="json", exclude={"reconstruction"}), **effective, **asdict(result)}
        score("recovered")
    for name, stages in quality.items():
        metric = held.metric(name)
        course = " -> ".join(f"{stage} {values[metric]:.4g}" for stage, values in stages.items())
        reporter.line(f"{name} held-out {metric}: {course}" if name in held.texts else f"{name} {metric}: {course}")
    return quality, record or None
