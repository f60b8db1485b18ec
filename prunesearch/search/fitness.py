"""Fitness: distillation loss of a pruned model against the dense teacher (lower is better).

Teacher outputs are computed once on the largest token budget; a smaller budget
uses a prefix of the same sequences, so budgets nest as selection steps grow.
Encoders: 1 − mean cosine of mean-pooled embeddings. Decoders: KL(teacher ‖ student)
of next-token distributions.

Training-aware selection (DarwinLM): with ``finetune_steps > 0``, a config scored on at
least ``finetune_from_tokens`` tokens is first fine-tuned briefly (AdamW, the recovery
distillation's loss, prune/recover.py) on ``tuning`` rows, calibration rows that no
score is taken on, so survivors are ranked by how well they recover rather than by
their one-shot loss, and not by how well they memorised the rows they are scored on.
Off by default: it costs forward and backward passes per evaluation.
"""

from __future__ import annotations

import torch
from torch import nn

from prunesearch.config import Config
from prunesearch.prune.apply import UnitSource, prune
from prunesearch.prune.recover import distillation_loss
from prunesearch.quality import mean_pool


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
    ) -> None:
        if finetune_steps and tuning is None:
            raise ValueError("fine-tuning needs tuning rows apart from the rows fitness scores on")
        self.model = model
        self.database = database
        self.batch = batch
        self.is_decoder = is_decoder
        self.micro_batch = micro_batch
        self.finetune_steps = finetune_steps
        self.finetune_lr = finetune_lr
        self.finetune_from_tokens = finetune_from_tokens
        self.teacher = self._outputs(model, len(batch["input_ids"]))
        self.tuning = [] if tuning is None else self._tuning_targets(tuning)

    def _rows(self, tokens: int) -> int:
        """The fewest leading rows holding ``tokens`` real (unpadded) tokens."""
        real = self.batch["attention_mask"].sum(1).cumsum(0)
        return min(len(real), int(torch.searchsorted(real, torch.tensor(tokens))) + 1)

    def _part(self, start: int, rows: int) -> dict[str, torch.Tensor]:
        return {k: v[start : min(rows, start + self.micro_batch)] for k, v in self.batch.items()}

    def _forward(self, model: nn.Module, part: dict[str, torch.Tensor]) -> torch.Tensor:
        result = model(**part)
        if self.is_decoder:
            return torch.log_softmax(result.logits.float(), dim=-1)
        return mean_pool(result.last_hidden_state, part["attention_mask"])

    @torch.no_grad()
    def _outputs(self, model: nn.Module, rows: int) -> list[torch.Tensor]:
        return [self._forward(model, self._part(start, rows)) for start in range(0, rows, self.micro_batch)]

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

    def __call__(self, config: Config, tokens: int) -> float:
        student = prune(self.model, config, self.database)
        if self.finetune_steps and tokens >= self.finetune_from_tokens:
            self._finetune(student)
        rows = self._rows(tokens)
        losses, weights = [], []
        for i, (s, t) in enumerate(zip(self._outputs(student, rows), self.teacher)):
            t = t[: len(s)]  # the budget may end inside a micro-batch
            mask = self.batch["attention_mask"][i * self.micro_batch : i * self.micro_batch + len(s)]
            if self.is_decoder:
                kl = (t.exp() * (t - s)).sum(-1)  # per token
                losses.append((kl * mask).sum().item())
                weights.append(mask.sum().item())
            else:
                losses.append((1 - torch.cosine_similarity(s, t, dim=-1)).sum().item())
                weights.append(len(s))
        return sum(losses) / max(sum(weights), 1.0)
