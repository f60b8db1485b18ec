"""Calibration text: packed token chunks for reconstruction and fitness, held-out text for evaluation.

Paragraphs are shuffled with a seed and split (by paragraph, so nothing leaks)
into a calibration part and a held-out part. Budgets are prefixes: asking for
more tokens extends what a smaller budget saw.
"""

from __future__ import annotations

import hashlib
import re
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from prunesearch.errors import PruneSearchError

DEFAULT_TEXT = Path(__file__).resolve().parents[1] / "data" / "python_docs.txt"
HELDOUT_SHARE = 0.2


def read_paragraphs(files: list[Path]) -> list[str]:
    paragraphs = []
    for f in files:
        try:
            text = Path(f).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PruneSearchError(f"calibration file not found: {f}") from None
        except (UnicodeDecodeError, IsADirectoryError) as exc:
            raise PruneSearchError(f"calibration file {f} is not UTF-8 text ({exc.__class__.__name__})") from None
        paragraphs += [p.strip() for p in re.split(r"\n\s*\n|\n", text) if p.strip() and not p.startswith("#")]
    if len(paragraphs) < 10:
        raise PruneSearchError(f"calibration text too short: {len(paragraphs)} paragraphs in {', '.join(map(str, files))} (need 10+)")
    return paragraphs


def sentences_of(paragraphs: list[str]) -> list[str]:
    out = []
    for p in paragraphs:
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", p) if len(s.split()) >= 6]
    return out


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a text ([CLS] … [SEP], <bos> …)."""
    bare = tokenizer("hello", add_special_tokens=False)["input_ids"]
    full = tokenizer("hello")["input_ids"]
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return full[:i], full[i + len(bare) :]
    return [], []


class CalibrationSet:
    """Deterministic calibration and held-out splits of some text for one tokenizer."""

    def __init__(self, tokenizer, paragraphs: list[str], *, seq_len: int = 128, seed: int = 0) -> None:
        self.tokenizer = tokenizer
        self.seq_len = seq_len
        order = np.random.default_rng(seed).permutation(len(paragraphs))
        n_held = max(2, int(len(paragraphs) * HELDOUT_SHARE))
        self.heldout_paragraphs = [paragraphs[i] for i in order[:n_held]]
        self.calib_paragraphs = [paragraphs[i] for i in order[n_held:]]
        digest = hashlib.sha256("\n".join(paragraphs).encode())
        digest.update(f"{seq_len}:{seed}:{getattr(tokenizer, 'name_or_path', '')}".encode())
        self.fingerprint = digest.hexdigest()[:16]

    def _chunks(self, paragraphs: list[str]) -> torch.Tensor:
        """Token ids of the concatenated text, cut into full ``seq_len`` rows with special tokens."""
        tok = self.tokenizer
        prefix, suffix = special_tokens(tok)
        body = self.seq_len - len(prefix) - len(suffix)
        # paragraph by paragraph: a single huge text trips the tokenizer's length warning
        ids = [i for row in tok(paragraphs, add_special_tokens=False)["input_ids"] for i in row]
        rows = [prefix + ids[i : i + body] + suffix for i in range(0, len(ids) - body + 1, body)]
        return torch.tensor(rows, dtype=torch.long)

    @cached_property
    def _calib(self) -> torch.Tensor:
        return self._chunks(self.calib_paragraphs)

    @cached_property
    def _heldout(self) -> torch.Tensor:
        return self._chunks(self.heldout_paragraphs)

    @staticmethod
    def _take(rows: torch.Tensor, n_tokens: int, seq_len: int) -> dict[str, torch.Tensor]:
        n = max(1, n_tokens // seq_len)
        if n > len(rows):
            raise PruneSearchError(
                f"calibration text holds {len(rows) * seq_len} tokens, {n_tokens} asked; give more text or a smaller budget"
            )
        ids = rows[:n]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def calib(self, n_tokens: int) -> dict[str, torch.Tensor]:
        return self._take(self._calib, n_tokens, self.seq_len)

    def heldout(self, n_tokens: int) -> dict[str, torch.Tensor]:
        return self._take(self._heldout, n_tokens, self.seq_len)

    def heldout_sentences(self, n: int = 512) -> dict[str, torch.Tensor]:
        """The first ``n`` held-out sentences, padded into one batch (sentence-embedding evaluation)."""
        sentences = sentences_of(self.heldout_paragraphs)[:n]
        return dict(self.tokenizer(sentences, padding=True, truncation=True, max_length=self.seq_len, return_tensors="pt"))


def load_calibration(tokenizer, *, files: list[Path] | None = None, seq_len: int = 128, seed: int = 0) -> CalibrationSet:
    """The user's text files, or the shipped default (prose from Python's documentation)."""
    if tokenizer is None:
        raise PruneSearchError("this model has no tokenizer; calibration needs one (save it beside the weights)")
    return CalibrationSet(tokenizer, read_paragraphs(files or [DEFAULT_TEXT]), seq_len=seq_len, seed=seed)
