"""Recovery distillation: a short training of a pruned model towards its dense teacher.

Pruning without training collapses quality quickly (ZipLM, Minitron and DarwinLM all train after
pruning). The student learns to reproduce the teacher on calibration text: an encoder its
per-token hidden states and its mean-pooled sentence embedding (cosine losses), a decoder its
next-token distributions (KL, optionally over the teacher's top-k tokens only). Training stops at
the token budget, or early when the loss on rows held back from training (a validation part of
the calibration split, never the held-out text quality is reported on) stops improving; the best
state seen is kept. Runs on the model's device (a GPU where the model is on one).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt
from torch import nn

from prunesearch._pooling import mean_pool
from prunesearch._reporter import QUIET, Reporter


class RecoveryOptions(BaseModel):
    """How long and how the exported model is distilled (``tokens: 0`` turns recovery off)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: training tokens at most (real, unpadded)
    tokens: NonNegativeInt = 0
    lr: PositiveFloat = 1e-4
    #: rows per optimiser step
    batch: PositiveInt = 16
    #: steps between validations, and validations without improvement before stopping
    validate_every: PositiveInt = 10
    patience: PositiveInt = 3
    #: tokens of the calibration split held back from training to validate on
    validation_tokens: PositiveInt = 4096
    #: decoders: distil the teacher's top-k next-token probabilities only (0: the whole distribution)
    top_k: NonNegativeInt = Field(default=0)
    seed: int = 0


@dataclass
class RecoveryResult:
    tokens: int
    steps: int
    seconds: float
    #: validation loss before training and at the best state kept
    validation_before: float
    validation_after: float
    stopped_early: bool
    history: list[tuple[int, float]] = field(default_factory=list)


def _outputs(model: nn.Module, batch: dict[str, torch.Tensor], *, is_decoder: bool) -> tuple[torch.Tensor, ...]:
    out = model(**batch, use_cache=False) if is_decoder else model(**batch)
    return (out.logits.float(),) if is_decoder else (out.last_hidden_state,)


def distillation_loss(student, teacher, mask: torch.Tensor, *, is_decoder: bool, top_k: int = 0) -> torch.Tensor:
    """Encoders: 1 - cosine of each real token's hidden state plus 1 - cosine of the mean-pooled embedding;
    decoders: KL(teacher || student) of next-token distributions per real token (top-k: over the
    teacher's k likeliest tokens, renormalised)."""
    m = mask.to(student[0].dtype)
    if is_decoder:
        s, t = student[0], teacher[0]
        if top_k:
            t, index = t.topk(top_k, dim=-1)
            s = s.gather(-1, index)
        t, s = t.log_softmax(-1), s.log_softmax(-1)
        kl = (t.exp() * (t - s)).sum(-1)
        return (kl * m).sum() / m.sum().clamp(min=1.0)
    s, t = student[0], teacher[0]
    tokens = ((1 - torch.cosine_similarity(s, t, dim=-1)) * m).sum() / m.sum().clamp(min=1.0)
    pooled = 1 - torch.cosine_similarity(mean_pool(s, mask), mean_pool(t, mask), dim=-1).mean()
    return tokens + pooled


def _batches(batch: dict[str, torch.Tensor], size: int):
    for start in range(0, len(batch["input_ids"]), size):
        yield {k: v[start : start + size] for k, v in batch.items()}


def _trim(part: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop padding columns no row of this batch uses (rows are right-padded)."""
    width = int(part["attention_mask"].sum(1).max())
    return {k: v[:, :width] for k, v in part.items()}


def recover(
    student: nn.Module,
    teacher: nn.Module,
    calibration,
    *,
    is_decoder: bool,
    options: RecoveryOptions,
    reporter: Reporter = QUIET,
) -> RecoveryResult:
    """Distil ``student`` (trained in place) towards ``teacher`` on ``calibration``'s training rows (a
    CalibrationSet), validating on the rows ``calibration.validation`` holds back."""
    torch.manual_seed(options.seed)
    device = next(student.parameters()).device
    train = calibration.training(options.tokens, held_back=options.validation_tokens)
    valid = calibration.validation(options.validation_tokens)
    on = lambda part: {k: v.to(device) for k, v in _trim(part).items()}  # noqa: E731

    @torch.no_grad()
    def targets(batch):
        teacher.eval()
        return [(on(p), _outputs(teacher, on(p), is_decoder=is_decoder)) for p in _batches(batch, options.batch)]

    valid_targets = targets(valid)

    @torch.no_grad()
    def validation_loss() -> float:
        student.eval()
        losses = [
            distillation_loss(
                _outputs(student, p, is_decoder=is_decoder),
                t,
                p["attention_mask"],
                is_decoder=is_decoder,
                top_k=options.top_k,
            ).item()
            for p, t in valid_targets
        ]
        return sum(losses) / len(losses)

    started = time.monotonic()
    before = best = validation_loss()
    best_state = copy.deepcopy(student.state_dict())
    history, waited, steps, seen = [(0, before)], 0, 0, 0
    optimizer = torch.optim.AdamW(student.parameters(), lr=options.lr, weight_decay=0.0)
    total = len(train["input_ids"])
    stopped = False
    with reporter.bar(
        "recover", f"distilling towards the dense model on {options.tokens:,} tokens", total=total
    ) as update:
        for part in _batches(train, options.batch):
            part = on(part)
            with torch.no_grad():
                teacher.eval()
                target = _outputs(teacher, part, is_decoder=is_decoder)
            student.train()
            loss = distillation_loss(
                _outputs(student, part, is_decoder=is_decoder),
                target,
                part["attention_mask"],
                is_decoder=is_decoder,
                top_k=options.top_k,
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            seen += int(part["attention_mask"].sum())
            if steps % options.validate_every == 0:
                current = validation_loss()
                history.append((seen, current))
                if current < best:
                    best, waited, best_state = current, 0, copy.deepcopy(student.state_dict())
                else:
                    waited += 1
                update(
                    completed=min(steps * options.batch, total),
                    description=f"validation loss {before:.4f} -> {best:.4f} ({seen:,} tokens)",
                )
                if waited >= options.patience:
                    stopped = True
                    break
    if not stopped:
        current = validation_loss()
        history.append((seen, current))
        if current < best:
            best, best_state = current, copy.deepcopy(student.state_dict())
    student.load_state_dict(best_state)
    student.eval()
    return RecoveryResult(
        tokens=seen,
        steps=steps,
        seconds=round(time.monotonic() - started, 1),
        validation_before=before,
        validation_after=best,
        stopped_early=stopped,
        history=history,
    )
