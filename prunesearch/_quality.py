"""Quality of a pruned model against its dense teacher, on held-out data."""

from __future__ import annotations

import math

import torch
from torch import nn

from prunesearch._pooling import mean_pool


@torch.no_grad()
def embeddings(model: nn.Module, batch: dict[str, torch.Tensor], *, micro_batch: int = 64) -> torch.Tensor:
    out = []
    for i in range(0, len(batch["input_ids"]), micro_batch):
        part = {k: v[i : i + micro_batch] for k, v in batch.items()}
        out.append(mean_pool(model(**part).last_hidden_state, part["attention_mask"]))
    return torch.cat(out)


def embedding_cosine(model: nn.Module, dense_embeddings: torch.Tensor, batch: dict[str, torch.Tensor]) -> float:
    """Mean cosine between the model's sentence embeddings and the dense model's."""
    return torch.cosine_similarity(embeddings(model, batch), dense_embeddings, dim=-1).mean().item()


@torch.no_grad()
def perplexity(model: nn.Module, batch: dict[str, torch.Tensor], *, micro_batch: int = 8) -> float:
    """exp(mean next-token negative log-likelihood) over the batch's real tokens."""
    total, count = 0.0, 0
    for i in range(0, len(batch["input_ids"]), micro_batch):
        ids = batch["input_ids"][i : i + micro_batch]
        mask = batch["attention_mask"][i : i + micro_batch]
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        total += (nll * mask[:, 1:]).sum().item()
        count += mask[:, 1:].sum().item()
    return math.exp(total / count)


@torch.no_grad()
def kl_to_dense(
    model: nn.Module, dense_logits: torch.Tensor, batch: dict[str, torch.Tensor], *, micro_batch: int = 8
) -> float:
    """Mean KL(dense || model) of next-token distributions over the batch's real tokens."""
    total, count = 0.0, 0
    for i in range(0, len(batch["input_ids"]), micro_batch):
        ids = batch["input_ids"][i : i + micro_batch]
        mask = batch["attention_mask"][i : i + micro_batch]
        logp = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float().log_softmax(-1)
        ref = dense_logits[i : i + micro_batch].float().log_softmax(-1)
        kl = (ref.exp() * (ref - logp)).sum(-1)
        total += (kl * mask).sum().item()
        count += mask.sum().item()
    return total / count


class HeldOut:
    """Held-out text a pruned model is scored on against its dense model: the calibration text's own held-out
    part ("in-domain") and text from another source it never saw ("out-of-domain", the shipped fortunes
    unless given). Encoders: mean cosine of sentence embeddings; decoders: perplexity and KL to the dense
    model's next-token distributions. The dense model's outputs are computed once."""

    def __init__(self, loaded, calibration, *, out_of_domain=None, sentences: int = 256, tokens: int = 4096) -> None:
        from prunesearch.prune._calibration import OUT_OF_DOMAIN, load_calibration

        self.decoder = loaded.is_decoder
        other = out_of_domain or load_calibration(
            loaded.tokenizer, files=[OUT_OF_DOMAIN], seq_len=calibration.seq_len, rows=calibration.rows
        )
        self.texts = {}
        for name, text in (("in-domain", calibration), ("out-of-domain", other)):
            if self.decoder:
                batch = text.heldout(tokens)
                with torch.no_grad():
                    reference = loaded.model(**batch, use_cache=False).logits.half()
            else:
                batch = text.heldout_sentences(sentences)
                reference = embeddings(loaded.model, batch)
            self.texts[name] = (batch, reference)
        self.dense = self(loaded.model)

    @property
    def metric(self) -> str:
        """The headline score, and whether higher is better."""
        return "perplexity" if self.decoder else "cosine"

    def __call__(self, model: nn.Module) -> dict[str, dict[str, float]]:
        scores = {}
        for name, (batch, reference) in self.texts.items():
            if self.decoder:
                scores[name] = {"perplexity": perplexity(model, batch), "kl": kl_to_dense(model, reference, batch)}
            else:
                scores[name] = {"cosine": embedding_cosine(model, reference, batch)}
        return scores
