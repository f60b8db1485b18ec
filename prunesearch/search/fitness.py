"""Fitness: distillation loss of a pruned model against the dense teacher (lower is better).

Teacher outputs are computed once on the largest token budget; a smaller budget
uses a prefix of the same sequences, so budgets nest as selection steps grow.
Encoders: 1 − mean cosine of mean-pooled embeddings. Decoders: KL(teacher ‖ student)
of next-token distributions.
"""

from __future__ import annotations

import torch
from torch import nn

from prunesearch.config import Config
from prunesearch.prune.apply import UnitSource, prune
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
    ) -> None:
        self.model = model
        self.database = database
        self.batch = batch
        self.is_decoder = is_decoder
        self.micro_batch = micro_batch
        self.seq_len = batch["input_ids"].shape[1]
        self.teacher = self._outputs(model, len(batch["input_ids"]))

    def _rows(self, tokens: int) -> int:
        return max(1, min(len(self.batch["input_ids"]), tokens // self.seq_len))

    @torch.no_grad()
    def _outputs(self, model: nn.Module, rows: int) -> list[torch.Tensor]:
        out = []
        for start in range(0, rows, self.micro_batch):
            part = {k: v[start : min(rows, start + self.micro_batch)] for k, v in self.batch.items()}
            result = model(**part)
            if self.is_decoder:
                out.append(torch.log_softmax(result.logits.float(), dim=-1))
            else:
                out.append(mean_pool(result.last_hidden_state, part["attention_mask"]))
        return out

    @torch.no_grad()
    def __call__(self, config: Config, tokens: int) -> float:
        student = prune(self.model, config, self.database)
        rows = self._rows(tokens)
        losses, weights = [], []
        for i, (s, t) in enumerate(zip(self._outputs(student, rows), self.teacher)):
            mask = self.batch["attention_mask"][i * self.micro_batch : i * self.micro_batch + len(s)]
            if self.is_decoder:
                kl = (t.exp() * (t - s)).sum(-1)  # per token
                losses.append((kl * mask).sum().item())
                weights.append(mask.sum().item())
            else:
                losses.append((1 - torch.cosine_similarity(s, t, dim=-1)).sum().item())
                weights.append(len(s))
        return sum(losses) / max(sum(weights), 1.0)
