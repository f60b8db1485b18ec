"""Fitness: distillation loss of a pruned model against the dense teacher (lower is better).

Teacher outputs are computed once on the largest token budget; a smaller budget
uses a prefix of the same rows, so budgets nest as selection steps grow.
Encoders: 1 − mean cosine of mean-pooled embeddings. Decoders: KL(teacher ‖ student)
of next-token distributions over the teacher's ``TEACHER_TOP_K`` likeliest tokens and
one bucket for the rest (exact where the vocabulary is no larger; the full distribution
of 4096 tokens over SmolLM2's 49k vocabulary would take 0.8 GB).

A candidate is scored one layer at a time (prune/_layerwise.py): each layer is pruned from
the level database just before the calibration rows' hidden states pass through it and
dropped after, so an evaluation holds the dense model plus one pruned layer, never a copy
of the model, and the level database is read one layer's levels at a time.

Training-aware selection (DarwinLM): with ``finetune_steps > 0``, a config scored on at
least ``finetune_from_tokens`` tokens is first pruned whole and fine-tuned briefly (AdamW,
the recovery distillation's loss, prune/_recover.py) on ``tuning`` rows, calibration rows
that no score is taken on, so survivors are ranked by how well they recover rather than by
their one-shot loss, and not by how well they memorised the rows they are scored on.
Off by default: it costs forward and backward passes and a model copy per evaluation.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from prunesearch._config import Config
from prunesearch._pooling import mean_pool
from prunesearch.prune._apply import UnitSource, prune
from prunesearch.prune._layerwise import LayerCalls, ScratchModel, capture_calls, run_layer
from prunesearch.prune._recover import LOGIT_CHUNK, TopK, distillation_loss, log_probs, teacher_top_k
from prunesearch.space import KINDS

#: decoders: the teacher's likeliest tokens kept per position; the rest are one bucket
TEACHER_TOP_K = 256


def fitness_device() -> tuple[str, torch.dtype | None]:
    """Where candidates are scored: an NVIDIA GPU in bf16 (fp16 where it has no bf16) when torch sees one;
    else this CPU, in the model's own fp32."""
    if not torch.cuda.is_available():
        return "cpu", None
    return "cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class DistillationFitness:
    """``fitness(config, tokens) -> loss`` for one model, database and calibration batch."""

    def __init__(
        self,
        model: nn.Module,
        database: UnitSource,
        batch: dict[str, torch.Tensor],
        *,
        is_decoder: bool,
        micro_batch: int = 16,
        finetune_steps: int = 0,
        finetune_lr: float = 1e-5,
        finetune_from_tokens: int = 0,
        tuning: dict[str, torch.Tensor] | None = None,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
    ) -> None:
        """``device``/``dtype``: where candidates are scored (fitness_device()); the model is copied there
        unless it is there already."""
        if finetune_steps and tuning is None:
            raise ValueError("fine-tuning needs tuning rows apart from the rows fitness scores on")
        here = next(model.parameters())
        if torch.device(device) != here.device or (dtype is not None and dtype != here.dtype):
            model = copy.deepcopy(model).to(device, dtype)
        batch = {k: v.to(device) for k, v in batch.items()}
        tuning = None if tuning is None else {k: v.to(device) for k, v in tuning.items()}
        self.model = model.eval()
        self.database = database
        self.batch = batch
        self.is_decoder = is_decoder
        self.micro_batch = micro_batch
        self.finetune_steps = finetune_steps
        self.finetune_lr = finetune_lr
        self.finetune_from_tokens = finetune_from_tokens
        self.scratch = ScratchModel(model)
        self.parts = [
            {k: v[start : start + micro_batch] for k, v in batch.items()}
            for start in range(0, len(batch["input_ids"]), micro_batch)
        ]
        self.calls: list[LayerCalls] = []
        self.teacher: list[torch.Tensor | TopK] = []
        for part in self.parts:
            calls, hidden = capture_calls(model, part)
            self.calls.append(calls)
            self.teacher.append(self._target(hidden, part))
        self.tuning = [] if tuning is None else self._tuning_targets(tuning)

    def _rows(self, tokens: int) -> int:
        """The fewest leading rows holding ``tokens`` real (unpadded) tokens."""
        real = self.batch["attention_mask"].sum(1).cumsum(0).cpu()
        return min(len(real), int(torch.searchsorted(real, torch.tensor(tokens))) + 1)

    @torch.no_grad()
    def _target(self, hidden: torch.Tensor, part: dict[str, torch.Tensor]) -> torch.Tensor | TopK:
        if not self.is_decoder:
            return mean_pool(hidden.float(), part["attention_mask"])
        return teacher_top_k(self.model, hidden.reshape(-1, hidden.shape[-1]), TEACHER_TOP_K)

    @torch.no_grad()
    def _layerwise(self, config: Config, parts: int) -> list[torch.Tensor]:
        """The last hidden state of each of the first ``parts`` micro-batches, the model pruned to
        ``config`` one layer at a time."""
        self.database.space.validate(config)
        hidden = [calls.hidden for calls in self.calls[:parts]]
        for i, layer in enumerate(config.layers):
            choices = {kind: self.database.choice(i, kind, size) for kind, size in zip(KINDS, (layer.heads, layer.ffn))}
            with self.scratch.pruned(i, choices) as module:
                hidden = [run_layer(module, h, *calls.calls[i]) for h, calls in zip(hidden, self.calls)]
        norm = self.scratch.adapter.final_norm()
        return [norm(h) for h in hidden]

    @torch.no_grad()
    def _whole(self, student: nn.Module, parts: int) -> list[torch.Tensor]:
        extra = {"use_cache": False} if self.is_decoder else {}
        return [student.base_model(**part, **extra).last_hidden_state for part in self.parts[:parts]]

    def _raw(self, model: nn.Module, part: dict[str, torch.Tensor]) -> tuple[torch.Tensor]:
        out = model(**part, use_cache=False) if self.is_decoder else model(**part)
        return (out.logits.float(),) if self.is_decoder else (out.last_hidden_state,)

    @torch.no_grad()
    def _tuning_targets(self, tuning: dict[str, torch.Tensor]) -> list[tuple[dict, tuple]]:
        parts = [
            {k: v[s : s + self.micro_batch] for k, v in tuning.items()}
            for s in range(0, len(tuning["input_ids"]), self.micro_batch)
        ]
        return [(p, self._raw(self.model, p)) for p in parts]

    def _finetune(self, student: nn.Module) -> None:
        """A few AdamW steps of distillation on the tuning rows' micro-batches (cycled)."""
        optimizer = torch.optim.AdamW(student.parameters(), lr=self.finetune_lr)
        for step in range(self.finetune_steps):
            part, target = self.tuning[step % len(self.tuning)]
            student.eval()  # no dropout: the same config always gets the same fine-tuned loss
            loss = distillation_loss(
                self._raw(student, part), target, part["attention_mask"], is_decoder=self.is_decoder
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        optimizer.state.clear()  # an optimiser lives in a reference cycle: its moments would wait for the collector

    def __call__(self, config: Config, tokens: int) -> float:
        rows = self._rows(tokens)
        parts = math.ceil(rows / self.micro_batch)
        if self.finetune_steps and tokens >= self.finetune_from_tokens:
            student = prune(self.model, config, self.database)
            self._finetune(student)
            hidden = self._whole(student, parts)
        else:
            hidden = self._layerwise(config, parts)
        return self._loss(hidden, rows)

    @torch.no_grad()
    def _loss(self, hidden: list[torch.Tensor], rows: int) -> float:
        """Mean loss over the first ``rows`` rows (decoders: over their real tokens)."""
        total, weight = 0.0, 0.0
        for i, (h, part, teacher) in enumerate(zip(hidden, self.parts, self.teacher)):
            mine = slice(0, min(rows - i * self.micro_batch, len(h)))  # the budget may end inside a micro-batch
            mask = part["attention_mask"][mine]
            if self.is_decoder:
                flat = h[mine].reshape(-1, h.shape[-1])
                offset = 0
                for chunk in flat.split(LOGIT_CHUNK):
                    kl = teacher.kl(log_probs(self.model, chunk), slice(offset, offset + len(chunk)))
                    total += float((kl * mask.reshape(-1)[offset : offset + len(chunk)]).sum())
                    offset += len(chunk)
                weight += float(mask.sum())
            else:
                s = mean_pool(h[mine].float(), mask)
                total += float((1 - torch.cosine_similarity(s, teacher[mine], dim=-1)).sum())
                weight += len(s)
        return total / max(weight, 1.0)
