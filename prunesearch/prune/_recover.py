"""Recovery distillation: a training of a pruned model towards its dense teacher.

Pruning without training collapses quality quickly (ZipLM, Minitron and DarwinLM all train after
pruning). The student learns to reproduce the teacher: an encoder its per-token hidden states and
its mean-pooled sentence embedding (cosine losses), a decoder its next-token distributions (KL over
the teacher's top-k tokens and one bucket for the rest). The training text is streamed (general
English beside the calibration text's training rows, ``prune.calibration.mixed_rows``), never held
whole, so ``tokens`` may run to millions. The learning rate warms up and decays (cosine) over the
token budget. Training stops at the budget, or early when the loss on rows held back from training (a
validation part of the calibration split, never the held-out text quality is reported on) stops
improving against its best since the warm-up; the best state seen, the start included, is kept. Runs
on the model's device (a GPU where the model is on one), in bf16 autocast where that device computes
bf16 natively.

Memory: a step's rows run in micro-batches whose gradients accumulate; a decoder's loss is formed a
chunk of tokens at a time from the last hidden state (``LOGIT_CHUNK`` tokens' logits at once, never a
batch's), and its teacher keeps only its top-k log-probabilities; the token embeddings (a decoder's
largest matrix, tied to its output head) are frozen unless asked for, so they need neither
gradients nor optimiser state; under bf16 autocast the frozen output head is cast once and the embeddings are
read from the teacher's equal tensor (``frozen_head_in_bf16``). Where a step is one pass, each parameter steps
as soon as its gradient is complete, and that gradient is dropped then (``_AdamW``): the model's gradients are
never held at once. The teacher's targets are formed a validation interval of steps ahead (40 MB of top-k for
SmolLM2) and its mapped weights handed back while the student trains on them. With ``adapter_rank``, the
student's weights are all frozen and low-rank adapters beside its projections are trained instead
(prune/_adapters.py), merged into the projections when training ends: no moments for the weights themselves.
"""

from __future__ import annotations

import contextlib
import functools
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.checkpoint import checkpoint

from prunesearch._heap import file_page_releaser, pages_released_as_run, trim
from prunesearch._pooling import mean_pool
from prunesearch._reporter import QUIET, Reporter
from prunesearch.prune._adapters import frozen, low_rank_adapters
from prunesearch.prune._precision import autocast, bf16_native
from prunesearch.space import adapter_for

#: decoders: tokens whose logits are formed at once (128 x 49k vocab: 25 MB; 512 measured no faster and held
#: 92 MB more at a recovery step's peak)
LOGIT_CHUNK = 128


class ReconstructionOptions(BaseModel):
    """The error-correcting least-squares refit of the pick before distillation (prune/_reconstruct.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: tokens of the recovery text fitted on (0: no refit; none: encoders 262,144, decoders 16,384: the refit
    #: holds three fp32 hidden states per token, 113 MB for SmolLM2 at 16k tokens)
    tokens: NonNegativeInt | None = None
    #: ridge towards the current weights, as a share of the Gram diagonal's mean
    damp: PositiveFloat = 1e-3
    #: rows per pass (none: encoders 64, decoders 16: a pass holds both layers' activations of its rows, and for
    #: SmolLM2's 128-token rows 16 peaked 340 MB lower than 64, in no more time)
    micro_batch: PositiveInt | None = None

    def budget(self, *, is_decoder: bool) -> int:
        if self.tokens is not None:
            return self.tokens
        return 16_384 if is_decoder else 262_144

    def rows_per_pass(self, *, is_decoder: bool) -> int:
        return self.micro_batch or (16 if is_decoder else 64)


class RecoveryOptions(BaseModel):
    """How the exported model is reconstructed and distilled (``tokens: 0`` turns distillation off)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: training tokens at most (real, unpadded)
    tokens: NonNegativeInt = 0
    #: peak learning rate (AdamW), reached after ``warmup`` of the tokens, then decayed (cosine) to
    #: ``final_lr`` of it at the end of the budget. 3e-4 beat 1e-4 on both families measured: the demo's MiniLM
    #: pick after 131k tokens, STS-B dev on two seeds (reports/recovery_schedule_minilm.md), and SmolLM2's 1.25x
    #: pick after 65k tokens, perplexity (searches/smollm2-decode.yaml); 1e-3 never improved on the refit
    lr: PositiveFloat = 3e-4
    warmup: float = Field(default=0.1, ge=0.0, lt=1.0)
    final_lr: float = Field(default=0.1, ge=0.0, le=1.0)
    #: rows per optimiser step, and rows per forward/backward pass (gradients accumulate); none: encoders the
    #: whole step, decoders 4 rows (a decoder's activations for 16 x 128 tokens take gigabytes)
    batch: PositiveInt = 16
    micro_batch: PositiveInt | None = None
    #: text files of general English streamed beside the calibration text, a row from each in turn (none: the
    #: shipped recovery text)
    files: tuple[Path, ...] = ()
    #: share of the training rows taken from the calibration text's training split, the rest from ``files``
    calibration_share: float = Field(default=0.5, ge=0.0, le=1.0)
    #: steps between validations, and validations without improvement before stopping
    validate_every: PositiveInt = 10
    patience: PositiveInt = 3
    #: tokens of the calibration split held back from training to validate on
    validation_tokens: PositiveInt = 4096
    #: decoders: distil the teacher's top-k next-token probabilities and one bucket for the rest
    #: (0: the whole distribution)
    top_k: NonNegativeInt = 256
    #: train the token embeddings too (a decoder's tied output head with them)
    train_embeddings: bool = False
    #: 0: train the model's own weights (all but the embeddings); r > 0: freeze them and train a rank-r adapter
    #: beside each projection of the blocks, merged into it after (prune/_adapters.py): fewer numbers to keep
    #: moments for and no weight gradients to form
    adapter_rank: NonNegativeInt = 0
    #: bf16 autocast where the device computes bf16 natively (off: fp32 throughout)
    bf16: bool = True
    #: recompute each layer's activations in the backward pass instead of keeping them from the forward
    #: (activation checkpointing): a pass then holds one layer's activations and each layer's input (none:
    #: decoders on, encoders off; SmolLM2 in passes of 4 rows: 450 MB less at 0.91x the tokens/s,
    #: reports/recovery_checkpointing.md)
    checkpointing: bool | None = None
    reconstruction: ReconstructionOptions = ReconstructionOptions()
    seed: int = 0

    @field_validator("files")
    @classmethod
    def _exist(cls, files: tuple[Path, ...]) -> tuple[Path, ...]:
        missing = [str(f) for f in files if not Path(f).is_file()]
        if missing:
            raise ValueError(f"recovery text not found: {', '.join(missing)}")
        return files

    @model_validator(mode="after")
    def _one_kind_of_training(self) -> RecoveryOptions:
        if self.adapter_rank and self.train_embeddings:
            raise ValueError("adapter_rank trains adapters with every weight frozen: set train_embeddings to false")
        return self

    def rows_per_pass(self, *, is_decoder: bool) -> int:
        return min(self.batch, self.micro_batch or (4 if is_decoder else self.batch))

    def recomputes(self, *, is_decoder: bool) -> bool:
        return is_decoder if self.checkpointing is None else self.checkpointing

    def lr_at(self, seen: int) -> float:
        """The learning rate after ``seen`` training tokens: linear warm-up, then cosine decay."""
        progress = min(seen / max(self.tokens, 1), 1.0)
        if self.warmup and progress < self.warmup:
            return self.lr * max(progress / self.warmup, 0.01)
        decay = (progress - self.warmup) / max(1.0 - self.warmup, 1e-9)
        return self.lr * (self.final_lr + (1.0 - self.final_lr) * 0.5 * (1.0 + math.cos(math.pi * decay)))


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


@dataclass
class TopK:
    """A decoder teacher's next-token distribution per token: its top-k log-probabilities, their
    token ids, and the log-probability of everything else."""

    values: torch.Tensor
    index: torch.Tensor
    rest: torch.Tensor

    @classmethod
    def of(cls, log_probs: torch.Tensor, k: int) -> TopK:
        values, index = log_probs.topk(min(k, log_probs.shape[-1]), dim=-1)
        return cls(values=values, index=index.to(torch.int32), rest=log_rest(values))

    @classmethod
    def cat(cls, chunks: list[TopK]) -> TopK:
        return cls(*(torch.cat([getattr(c, name) for c in chunks]) for name in ("values", "index", "rest")))

    def kl(self, student_log_probs: torch.Tensor, tokens: slice) -> torch.Tensor:
        """KL(teacher ‖ student) per token over the top-k tokens and the bucket of the rest."""
        t, t_rest = self.values[tokens], self.rest[tokens]
        s = student_log_probs.gather(-1, self.index[tokens].long())
        s_rest = log_rest(s)
        return (t.exp() * (t - s)).sum(-1) + t_rest.exp() * (t_rest - s_rest)


def log_rest(log_probs: torch.Tensor) -> torch.Tensor:
    """log(1 − Σ p) of the given log-probabilities: the mass outside them, floored at the dtype's
    smallest normal number so that a bucket rounded to nothing stays finite."""
    kept = torch.logsumexp(log_probs, dim=-1).clamp(max=0.0)
    return torch.log((-torch.expm1(kept)).clamp(min=torch.finfo(log_probs.dtype).tiny))


def log_probs(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Next-token log-probabilities (fp32) of final hidden states ``hidden`` (tokens, hidden)."""
    return torch.log_softmax(model.get_output_embeddings()(hidden).float(), dim=-1)


@torch.no_grad()
def teacher_top_k(model: nn.Module, hidden: torch.Tensor, k: int) -> TopK:
    """The top-k distributions of ``hidden`` (tokens, hidden), formed LOGIT_CHUNK tokens at a time."""
    k = k or model.get_output_embeddings().out_features
    return TopK.cat([TopK.of(log_probs(model, c), k) for c in hidden.split(LOGIT_CHUNK)])


def distillation_loss(student, teacher, mask: torch.Tensor, *, is_decoder: bool, top_k: int = 0) -> torch.Tensor:
    """Encoders: 1 - cosine of each real token's hidden state plus 1 - cosine of the mean-pooled embedding;
    decoders: KL(teacher || student) of next-token distributions per real token (top-k: over the
    teacher's k likeliest tokens, renormalised)."""
    m = mask.float()
    if is_decoder:
        s, t = student[0], teacher[0]
        if top_k:
            t, index = t.topk(top_k, dim=-1)
            s = s.gather(-1, index)
        t, s = t.log_softmax(-1), s.log_softmax(-1)
        kl = (t.exp() * (t - s)).sum(-1)
        return (kl * m).sum() / m.sum().clamp(min=1.0)
    s, t = student[0].float(), teacher[0].float()
    tokens = ((1 - torch.cosine_similarity(s, t, dim=-1)) * m).sum() / m.sum().clamp(min=1.0)
    pooled = 1 - torch.cosine_similarity(mean_pool(s, mask), mean_pool(t, mask), dim=-1).mean()
    return tokens + pooled


def _trim(part: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop padding columns no row of this batch uses (rows are right-padded)."""
    width = int(part["attention_mask"].sum(1).max())
    return {k: v[:, :width] for k, v in part.items()}


def _split(batch: dict[str, torch.Tensor], size: int) -> list[dict[str, torch.Tensor]]:
    return [_trim({k: v[i : i + size] for k, v in batch.items()}) for i in range(0, len(batch["input_ids"]), size)]


@contextlib.contextmanager
def recomputed(layers: list[nn.Module]) -> Iterator[None]:
    """While the block runs, each of ``layers`` keeps only its input for the backward pass and runs its forward
    again there (``torch.utils.checkpoint``, non-reentrant: keyword arguments and frozen weights work)."""
    for layer in layers:
        layer.forward = functools.partial(checkpoint, layer.forward, use_reentrant=False)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward  # the class's own forward again


class _Distiller:
    """One student, its teacher and the loss between them, per pass of rows."""

    def __init__(self, student: nn.Module, teacher: nn.Module, *, is_decoder: bool, options: RecoveryOptions) -> None:
        self.student, self.teacher, self.is_decoder, self.options = student, teacher, is_decoder, options
        self.device = next(student.parameters()).device
        self.recomputes = options.recomputes(is_decoder=is_decoder)

    def _hidden(self, model: nn.Module, part: dict[str, torch.Tensor]) -> torch.Tensor:
        extra = {"use_cache": False} if self.is_decoder else {}
        with autocast(self.device, enabled=self.options.bf16):
            return model.base_model(**part, **extra).last_hidden_state

    @torch.no_grad()
    def target(self, part: dict[str, torch.Tensor]):
        """What the teacher says about ``part``: its last hidden states (encoders), or the top-k distribution of
        each real token (decoders)."""
        self.teacher.eval()
        hidden = self._hidden(self.teacher, part)
        if not self.is_decoder:
            return hidden
        return teacher_top_k(self.teacher, hidden[part["attention_mask"].bool()], self.options.top_k)

    def targets(self, parts: list[dict[str, torch.Tensor]]) -> list[tuple[dict[str, torch.Tensor], object]]:
        """[(part, its target)] for ``parts``; the teacher's mapped weights are handed back layer by layer as it
        runs and wholly after (prunesearch._heap.pages_released_as_run), so the teacher is never resident beside
        the student's gradients and activations, nor whole while it runs (SmolLM2: 513 MB)."""
        with pages_released_as_run(adapter_for(self.teacher).layers()) as release:
            done = [(part, self.target(part)) for part in parts]
            release(self.teacher)
        return done

    def steps(self, batches, *, per_pass: int, block: int, budget: int):
        """(rows, real tokens, [(pass of rows, its target)]) per optimiser step of ``batches`` until ``budget``
        tokens: the teacher's targets are formed ``block`` steps at a time (``targets``)."""
        planned, pending = 0, []
        for batch in batches:
            if planned >= budget:
                break
            batch = {k: v.to(self.device) for k, v in batch.items()}
            tokens = int(batch["attention_mask"].sum())
            planned += tokens
            pending.append((len(batch["input_ids"]), tokens, _split(batch, per_pass)))
            if len(pending) == block or planned >= budget:
                yield from self._targeted(pending)
                pending = []
        yield from self._targeted(pending)

    def _targeted(self, pending: list[tuple[int, int, list[dict[str, torch.Tensor]]]]):
        targeted = iter(self.targets([part for _, _, parts in pending for part in parts]))
        return [(rows, tokens, [next(targeted) for _ in parts]) for rows, tokens, parts in pending]

    def loss(self, part: dict[str, torch.Tensor], target, *, scale: float | None = None) -> float:
        """The loss of ``part`` against ``target``; with ``scale``, its gradient (times ``scale``) accumulated
        into the student's parameters."""
        train = scale is not None
        recompute = train and self.recomputes
        layers = recomputed(adapter_for(self.student).layers()) if recompute else contextlib.nullcontext()
        with torch.set_grad_enabled(train), layers:
            hidden = self._hidden(self.student, part)
            mask = part["attention_mask"]
            if not self.is_decoder:
                loss = distillation_loss((hidden,), (target,), mask, is_decoder=False)
                if train:
                    (loss * scale).backward()
                return float(loss.detach())
            # a chunk of tokens at a time: each chunk's logits exist only while its loss and gradient are formed,
            # and flow back to the hidden states, which then carry the whole gradient back through the model
            flat = hidden[mask.bool()]
            cut = flat.detach().requires_grad_(train)
            total = 0.0
            for start in range(0, len(cut), LOGIT_CHUNK):
                piece = cut[start : start + LOGIT_CHUNK]
                with autocast(self.device, enabled=self.options.bf16):
                    kl = target.kl(log_probs(self.student, piece), slice(start, start + len(piece))).sum()
                if train:
                    (kl * (scale / len(cut))).backward()
                total += float(kl.detach())
            if train:
                flat.backward(cut.grad)
            return total / max(len(cut), 1)


class _BestState:
    """The trained parameters at the best validation loss, kept in a file, not beside the optimiser's state: a
    second copy of a pruned SmolLM2's trained weights is 283 MB at the step's peak."""

    def __init__(self, student: nn.Module, params: list[nn.Parameter]) -> None:
        self.student = student
        self.names = {name for name, p in student.named_parameters() if any(p is q for q in params)}
        self.folder = tempfile.TemporaryDirectory(prefix="prunesearch-recover-")  # removed when collected, too
        self.path = Path(self.folder.name) / "best.safetensors"

    def keep(self) -> None:
        state = {k: v.detach().contiguous() for k, v in self.student.state_dict().items() if k in self.names}
        save_file(state, str(self.path))

    def restore(self) -> None:
        """The kept parameters back into the student; the file is removed."""
        self.student.load_state_dict(load_file(str(self.path)), strict=False)
        self.folder.cleanup()


@contextlib.contextmanager
def trained_only(student: nn.Module, *, embeddings: bool) -> Iterator[list[nn.Parameter]]:
    """While the block runs, only the parameters it yields take gradients: the token embeddings are frozen unless
    ``embeddings`` (a decoder's are tied to its output head: a gradient there is a 113 MB matrix for SmolLM2,
    formed from every chunk of logits and never used)."""
    frozen_ids = set() if embeddings else {id(student.get_input_embeddings().weight)}
    with frozen([p for p in student.parameters() if id(p) in frozen_ids]):
        yield [p for p in student.parameters() if id(p) not in frozen_ids]


def trained_parameters(
    student: nn.Module, options: RecoveryOptions, *, in_bf16: bool
) -> contextlib.AbstractContextManager:
    """What recovery trains while the block runs, as a context yielding the parameters: the student's own
    (``trained_only``), or low-rank adapters beside its projections, merged into them after (``in_bf16``: the
    passes run under bf16 autocast, and the frozen projections are held in bf16 meanwhile)."""
    if options.adapter_rank:
        layers = adapter_for(student).layers()
        frozen_dtype = torch.bfloat16 if in_bf16 else None
        return low_rank_adapters(
            student, layers, rank=options.adapter_rank, seed=options.seed, frozen_dtype=frozen_dtype
        )
    return trained_only(student, embeddings=options.train_embeddings)


@contextlib.contextmanager
def frozen_head_in_bf16(student: nn.Module, teacher: nn.Module, *, enabled: bool) -> Iterator[None]:
    """While the block runs, a decoder's frozen output head is one bf16 copy, and its frozen token embeddings and
    head read the teacher's tensors wherever they hold the same values (pruning keeps them whole): the student's
    own fp32 copies are dropped for the block and made again, from the teacher's, after it. ``enabled``: the
    block's passes run in bf16 autocast, which otherwise casts the head again for each chunk of logits and keeps
    that copy for its backward. SmolLM2's tied 49,152 x 576 embeddings: a 113 MB fp32 copy and a 54 MB cast per
    chunk become one 56 MB bf16 copy; the lookups read a few rows of the teacher's mapping."""
    head = student.get_output_embeddings() if enabled and hasattr(student, "get_output_embeddings") else None
    if head is None or head.weight.requires_grad:
        yield
        return
    release = file_page_releaser()
    pairs = [
        (student.get_input_embeddings().weight, teacher.get_input_embeddings().weight),
        (head.weight, teacher.get_output_embeddings().weight),
    ]
    shared = {id(mine): (mine, theirs) for mine, theirs in pairs if _same(mine, theirs)}
    original = head.weight
    head.weight = nn.Parameter(original.detach().to(torch.bfloat16), requires_grad=False)
    for mine, theirs in pairs:
        if id(mine) in shared:
            mine.data = theirs.detach()
        release(theirs)  # read by the comparison

    def looked_up(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        release(module.weight)  # the rows a pass read: handed back, or they would add up over the steps

    hook = student.get_input_embeddings().register_forward_hook(looked_up)
    try:
        yield
    finally:
        hook.remove()
        head.weight = original  # tied to the input embeddings again where it was
        for mine, theirs in shared.values():
            mine.data = theirs.detach().clone()
            release(theirs)


def _same(mine: nn.Parameter, theirs: torch.Tensor) -> bool:
    """Whether frozen ``mine`` may read ``theirs`` instead: equal values, of one dtype, on one device."""
    return (
        not mine.requires_grad
        and (mine.shape, mine.dtype, mine.device) == (theirs.shape, theirs.dtype, theirs.device)
        and torch.equal(mine, theirs)
    )


def _head_trained(student: nn.Module, params: list[nn.Parameter]) -> bool:
    """Whether ``params`` hold a decoder's output head: its loss reaches the head once per chunk of logits, so the
    head's gradient is complete only at the step's end."""
    head = student.get_output_embeddings() if hasattr(student, "get_output_embeddings") else None
    return head is not None and any(p is head.weight for p in params)


class _AdamW:
    """AdamW over ``params``. ``in_backward``, for a step that is one backward pass reaching each parameter once:
    each parameter steps as soon as its gradient is complete (a post-accumulate-grad hook), and that gradient is
    dropped then, so the model's gradients never exist all at once (SmolLM2's pick: 243 MB less at a step's peak).
    The update is the same AdamW, parameter by parameter. Use as a context: the hooks go when it ends."""

    def __init__(self, params: list[nn.Parameter], *, lr: float, in_backward: bool) -> None:
        self.in_backward = in_backward
        groups = [[p] for p in params] if in_backward else [params]
        self.optimizers = [torch.optim.AdamW(group, lr=lr, weight_decay=0.0) for group in groups]
        self._hooks = []
        if in_backward:
            for p, optimizer in zip(params, self.optimizers):
                self._hooks.append(p.register_post_accumulate_grad_hook(functools.partial(self._step, optimizer)))

    @staticmethod
    def _step(optimizer: torch.optim.Optimizer, _param: nn.Parameter) -> None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def set_lr(self, lr: float) -> None:
        """The learning rate of the coming step (set before its backward pass: it may step there)."""
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = lr

    def zero_grad(self) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        if not self.in_backward:
            self.optimizers[0].step()

    def __enter__(self) -> _AdamW:
        return self

    def __exit__(self, *exc) -> None:
        for hook in self._hooks:
            hook.remove()
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
            optimizer.state.clear()  # an optimiser lives in a reference cycle: its moments would wait for the collector
        trim()  # their pages back now, not at the next timed trim: what follows allocates at once


def recover(
    student: nn.Module,
    teacher: nn.Module,
    calibration,
    *,
    is_decoder: bool,
    options: RecoveryOptions,
    batches=None,
    reporter: Reporter = QUIET,
) -> RecoveryResult:
    """Distil ``student`` (trained in place) towards ``teacher`` on ``batches`` (padded batches of ``options.batch``
    rows; default: the recovery text, ``recovery_batches``), validating on the rows ``calibration.validation``
    holds back (a CalibrationSet)."""
    torch.manual_seed(options.seed)
    device = next(student.parameters()).device
    on = lambda part: {k: v.to(device) for k, v in part.items()}  # noqa: E731
    distiller = _Distiller(student, teacher, is_decoder=is_decoder, options=options)
    per_pass = options.rows_per_pass(is_decoder=is_decoder)
    valid = distiller.targets(_split(on(calibration.validation(options.validation_tokens)), per_pass))

    def validation_loss() -> float:
        student.eval()
        losses = [distiller.loss(p, t) for p, t in valid]
        return sum(losses) / len(losses)

    batches = batches if batches is not None else recovery_batches(calibration, options=options, is_decoder=is_decoder)
    started = time.monotonic()
    before = best = validation_loss()
    history, waited, steps, seen = [(0, before)], 0, 0, 0
    # the first steps raise the loss for a while (AdamW's early updates disturb a least-squares fit): patience
    # counts against the best loss seen since the warm-up, never against the untrained start
    trend = float("inf")
    stopped = False
    one_pass = per_pass >= options.batch
    in_bf16 = options.bf16 and bf16_native(device)
    with (
        trained_parameters(student, options, in_bf16=in_bf16) as params,
        frozen_head_in_bf16(student, teacher, enabled=is_decoder and in_bf16),
        _AdamW(params, lr=options.lr_at(0), in_backward=one_pass and not _head_trained(student, params)) as optimizer,
        reporter.bar(
            "recover", f"distilling towards the dense model on {options.tokens:,} tokens", total=options.tokens
        ) as update,
    ):
        best_state = _BestState(student, params)
        best_state.keep()
        for rows, tokens, targeted in distiller.steps(
            batches, per_pass=per_pass, block=options.validate_every, budget=options.tokens
        ):
            student.eval()  # no dropout: the student matches the teacher, which runs without it
            optimizer.zero_grad()
            optimizer.set_lr(options.lr_at(seen))
            for part, target in targeted:
                distiller.loss(part, target, scale=len(part["input_ids"]) / rows)
            optimizer.step()
            steps += 1
            seen += tokens
            if steps % options.validate_every == 0:
                current = validation_loss()
                history.append((seen, current))
                if current < best:
                    best = current
                    best_state.keep()
                if seen < options.warmup * options.tokens:
                    pass  # no patience while warming up
                elif current < trend:
                    trend, waited = current, 0
                else:
                    waited += 1
                update(
                    completed=min(seen, options.tokens),
                    description=f"validation loss {before:.4f} -> {best:.4f} ({seen:,} tokens)",
                )
                if waited >= options.patience:
                    stopped = True
                    break
        update(completed=min(seen, options.tokens))  # the steps after the last validation
        if not stopped:
            current = validation_loss()
            history.append((seen, current))
            if current < best:
                best = current
                best_state.keep()
        best_state.restore()  # before adapters, if any, are merged into their projections
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


def recovery_batches(calibration, *, options: RecoveryOptions, is_decoder: bool, batch: int | None = None):
    """Padded batches of the recovery text, for ever: ``options.calibration_share`` of the rows from the calibration
    split's training rows, the rest streamed from ``options.files`` (default: the shipped general English), in
    the calibration's row format and length."""
    from prunesearch.prune._calibration import RECOVERY_FILES, TextStream, mixed_rows, token_batches

    stream = TextStream(
        calibration.tokenizer,
        list(options.files) or RECOVERY_FILES,
        seq_len=calibration.seq_len,
        rows=calibration.rows,
        seed=options.seed,
    )
    rows = mixed_rows(calibration, stream, share=options.calibration_share, held_back=options.validation_tokens)
    return token_batches(rows, batch=batch or options.batch, pad=calibration.tokenizer.pad_token_id or 0)
