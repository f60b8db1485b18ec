"""Quality of a pruned model against its dense teacher, on held-out data, and on what users measure:
an encoder's STS Spearman on sentence pairs scored by people, a decoder's perplexity."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from prunesearch._heap import pages_released_as_run
from prunesearch._pooling import mean_pool
from prunesearch.errors import PruneSearchError


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


def _hidden_parts(model: nn.Module, batch: dict[str, torch.Tensor], micro_batch: int):
    """(last hidden state, input ids, attention mask) of each micro-batch of a decoder."""
    for i in range(0, len(batch["input_ids"]), micro_batch):
        ids = batch["input_ids"][i : i + micro_batch]
        mask = batch["attention_mask"][i : i + micro_batch]
        yield model.base_model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state, ids, mask


@torch.no_grad()
def perplexity(model: nn.Module, batch: dict[str, torch.Tensor], *, micro_batch: int = 8) -> float:
    """exp(mean next-token negative log-likelihood) over the batch's real tokens; logits are formed LOGIT_CHUNK
    tokens at a time, never a batch's at once."""
    from prunesearch.prune._recover import LOGIT_CHUNK, log_probs

    total, count = 0.0, 0
    for hidden, ids, mask in _hidden_parts(model, batch, micro_batch):
        real = mask[:, 1:].bool()
        h, targets = hidden[:, :-1][real], ids[:, 1:][real]
        for start in range(0, len(h), LOGIT_CHUNK):
            logp = log_probs(model, h[start : start + LOGIT_CHUNK])
            total -= float(logp.gather(-1, targets[start : start + LOGIT_CHUNK, None]).sum())
        count += len(h)
    return math.exp(total / count)


@torch.no_grad()
def dense_reference(model: nn.Module, batch: dict[str, torch.Tensor], *, k: int = 256, micro_batch: int = 8):
    """The dense decoder's next-token distribution at each real token of ``batch``: its top-``k`` log-probabilities
    and one bucket for the rest (a TopK; the full distributions of 4,096 tokens over SmolLM2's vocabulary would
    take 800 MB)."""
    from prunesearch.prune._recover import TopK, teacher_top_k

    return TopK.cat([teacher_top_k(model, h[m.bool()], k) for h, _, m in _hidden_parts(model, batch, micro_batch)])


@torch.no_grad()
def kl_to_dense(model: nn.Module, reference, batch: dict[str, torch.Tensor], *, micro_batch: int = 8) -> float:
    """Mean KL(dense || model) of next-token distributions over the batch's real tokens, against ``reference``
    (``dense_reference``: exact where the vocabulary is no larger than its k)."""
    from prunesearch.prune._recover import LOGIT_CHUNK, log_probs

    total, offset = 0.0, 0
    for hidden, _, mask in _hidden_parts(model, batch, micro_batch):
        h = hidden[mask.bool()]
        for start in range(0, len(h), LOGIT_CHUNK):
            piece = h[start : start + LOGIT_CHUNK]
            total += float(reference.kl(log_probs(model, piece), slice(offset, offset + len(piece))).sum())
            offset += len(piece)
    return total / max(offset, 1)


@dataclass(frozen=True)
class SentencePairs:
    """Sentence pairs with a gold similarity each (an STS file: CSV or TSV rows of sentence 1, sentence 2,
    score; a header row is skipped). Evaluation data: never calibrated, searched or trained on."""

    path: Path
    first: list[str]
    second: list[str]
    gold: np.ndarray

    @property
    def name(self) -> str:
        return f"sts {self.path.name}"

    @classmethod
    def read(cls, path: str | Path) -> SentencePairs:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PruneSearchError(f"STS pairs file not found: {path}") from None
        except (UnicodeDecodeError, IsADirectoryError) as exc:
            raise PruneSearchError(f"STS pairs file {path} is not UTF-8 text ({exc.__class__.__name__})") from None
        delimiter = "\t" if text.split("\n", 1)[0].count("\t") >= 2 else ","
        first, second, gold = [], [], []
        for n, row in enumerate(csv.reader(text.splitlines(), delimiter=delimiter), start=1):
            if not row:
                continue
            if len(row) != 3:
                raise PruneSearchError(
                    f"{path}:{n}: {len(row)} columns; an STS pairs file has 3 (sentence 1, sentence 2, gold score)"
                )
            try:
                score = float(row[2])
            except ValueError:
                if not gold:
                    continue  # a header
                raise PruneSearchError(f"{path}:{n}: gold score {row[2]!r} is not a number") from None
            first.append(row[0])
            second.append(row[1])
            gold.append(score)
        if len(gold) < 10 or len(set(gold)) < 2:
            raise PruneSearchError(f"{path}: {len(gold)} scored pairs; STS needs 10 or more with varied scores")
        return cls(path=path, first=first, second=second, gold=np.asarray(gold))


def spearman(a, b) -> float:
    """Spearman rank correlation (ties get their mean rank)."""
    import pandas as pd

    return float(pd.Series(np.asarray(a, dtype=float)).corr(pd.Series(np.asarray(b, dtype=float)), method="spearman"))


@torch.no_grad()
def sentence_embeddings(
    model: nn.Module, tokenizer, sentences: list[str], *, max_length: int = 128, micro_batch: int = 64
) -> torch.Tensor:
    """Mean-pooled embeddings of ``sentences``, in order; micro-batches of similar length waste no padding."""
    lengths = [len(ids) for ids in tokenizer(sentences, truncation=True, max_length=max_length)["input_ids"]]
    order = np.argsort(lengths, kind="stable")
    out = torch.empty(len(sentences), model.config.hidden_size)
    for i in range(0, len(order), micro_batch):
        index = order[i : i + micro_batch]
        part = tokenizer(
            [sentences[j] for j in index], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        out[torch.as_tensor(index)] = embeddings(model, dict(part), micro_batch=micro_batch).float()
    return out


def sts_spearman(model: nn.Module, tokenizer, pairs: SentencePairs) -> float:
    """Spearman of the cosine of each pair's sentence embeddings against the pair's gold score."""
    first = sentence_embeddings(model, tokenizer, pairs.first)
    second = sentence_embeddings(model, tokenizer, pairs.second)
    return spearman(torch.cosine_similarity(first, second, dim=-1).numpy(), pairs.gold)


class HeldOut:
    """Held-out text a pruned model is scored on against its dense model: the calibration text's own held-out
    part ("in-domain") and text from another source it never saw ("out-of-domain", the shipped fortunes
    unless given). Encoders: mean cosine of sentence embeddings, and with ``sts`` (SentencePairs) the STS
    Spearman users measure; decoders: perplexity and KL to the dense model's next-token distributions (over
    its top 256 tokens and a bucket for the rest). The
    dense model's outputs are computed once: its cosine and KL to itself are 1 and 0 by definition, not run."""

    def __init__(
        self,
        loaded,
        calibration,
        *,
        out_of_domain=None,
        sts: SentencePairs | None = None,
        sentences: int = 256,
        tokens: int = 4096,
    ) -> None:
        from prunesearch.prune._calibration import OUT_OF_DOMAIN, load_calibration
        from prunesearch.space import adapter_for

        self.decoder = loaded.is_decoder
        if sts is not None and self.decoder:
            raise PruneSearchError(
                f"STS pairs ({sts.path}) score sentence embeddings, and {loaded.name} is a decoder: "
                "a decoder is scored by perplexity on text; give no pairs file"
            )
        self.sts = sts
        self.tokenizer = loaded.tokenizer
        other = out_of_domain or load_calibration(
            loaded.tokenizer, files=[OUT_OF_DOMAIN], seq_len=calibration.seq_len, rows=calibration.rows
        )
        self.texts = {}
        # the dense model's mapped weights are handed back as each layer has run, and wholly after: it is not read
        # again until the pruned model is refitted towards it (SmolLM2: 513 MB beside the pruned copy)
        with pages_released_as_run(adapter_for(loaded.model).layers()) as release:
            for name, text in (("in-domain", calibration), ("out-of-domain", other)):
                if self.decoder:
                    batch = text.heldout(tokens)
                    reference = dense_reference(loaded.model, batch)
                else:
                    batch = text.heldout_sentences(sentences)
                    reference = embeddings(loaded.model, batch)
                self.texts[name] = (batch, reference)
            self.dense = self(loaded.model, reference=True)
            release(loaded.model)

    def metric(self, name: str) -> str:
        """The headline score of one held-out set (``self.dense``'s keys)."""
        if self.sts is not None and name == self.sts.name:
            return "spearman"
        return "perplexity" if self.decoder else "cosine"

    def __call__(self, model: nn.Module, *, reference: bool = False) -> dict[str, dict[str, float]]:
        """``model``'s scores; ``reference``: it is the dense model the held-out outputs came from."""
        scores = {}
        for name, (batch, dense) in self.texts.items():
            if self.decoder:
                kl = 0.0 if reference else kl_to_dense(model, dense, batch)
                scores[name] = {"perplexity": perplexity(model, batch), "kl": kl}
            else:
                scores[name] = {"cosine": 1.0 if reference else embedding_cosine(model, dense, batch)}
        if self.sts is not None:
            scores[self.sts.name] = {"spearman": sts_spearman(model, self.tokenizer, self.sts)}
        return scores
