"""Calibration text for reconstruction and fitness, held-out text for evaluation.

Paragraphs are shuffled with a seed and split (by paragraph, so nothing leaks)
into a calibration part and a held-out part. Rows are either packed ``seq_len``
chunks (``"chunks"``, how decoders are fed) or separate texts of one to a few
sentences with their own special tokens, of varied length and padded
(``"texts"``, how encoders are used: a least-squares fit on packed chunks alone
saw [CLS]/[SEP] once per 128 tokens and generalised poorly to sentences).
Budgets count real (unpadded) tokens and are prefixes: asking for more tokens
extends what a smaller budget saw.
"""

from __future__ import annotations

import hashlib
import re
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from prunesearch.errors import PruneSearchError

DATA = Path(__file__).resolve().parents[1] / "data"
#: the default calibration text: everyday and technical English (scripts/make_calibration_text.py says how)
DEFAULT_FILES = [DATA / "general_en.txt", DATA / "python_docs.txt"]
#: human-written text from another source, never calibrated on: the out-of-domain held-out set
OUT_OF_DOMAIN = DATA / "fortunes_en.txt"
#: general English for reconstruction and recovery, beside the calibration text (2.6M MiniLM tokens)
RECOVERY_FILES = [DATA / "wordnet_en.txt"]
HELDOUT_SHARE = 0.2
Rows = Literal["chunks", "texts"]


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
        raise PruneSearchError(
            f"calibration text too short: {len(paragraphs)} paragraphs in {', '.join(map(str, files))} (need 10+)"
        )
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


def chunk_rows(tokenizer, paragraphs: list[str], *, seq_len: int) -> list[list[int]]:
    """Token ids of the concatenated text, cut into full ``seq_len`` rows with special tokens."""
    prefix, suffix = special_tokens(tokenizer)
    body = seq_len - len(prefix) - len(suffix)
    # paragraph by paragraph: a single huge text trips the tokenizer's length warning
    ids = [i for row in tokenizer(paragraphs, add_special_tokens=False)["input_ids"] for i in row]
    return [prefix + ids[i : i + body] + suffix for i in range(0, len(ids) - body + 1, body)]


def text_rows(tokenizer, paragraphs: list[str], *, seq_len: int, rng: np.random.Generator) -> list[list[int]]:
    """Consecutive sentences grouped into texts of a random length between 16 tokens and ``seq_len``
    (drawn from ``rng``), each with its own special tokens."""
    prefix, suffix = special_tokens(tokenizer)
    body = seq_len - len(prefix) - len(suffix)
    sentences = tokenizer(sentences_of(paragraphs), add_special_tokens=False)["input_ids"]
    rows, current, goal = [], [], int(rng.integers(16, body + 1))
    for ids in sentences:
        if current and len(current) + len(ids) > goal:
            rows.append(prefix + current[:body] + suffix)
            current, goal = [], int(rng.integers(16, body + 1))
        current = current + ids
    if current:
        rows.append(prefix + current[:body] + suffix)
    return rows


def rows_of(tokenizer, paragraphs: list[str], *, seq_len: int, rows: Rows, rng: np.random.Generator) -> list[list[int]]:
    """``paragraphs`` as rows of token ids: packed chunks (decoders) or separate texts (encoders)."""
    if rows == "chunks":
        return chunk_rows(tokenizer, paragraphs, seq_len=seq_len)
    return text_rows(tokenizer, paragraphs, seq_len=seq_len, rng=rng)


def pad_rows(rows: list[list[int]], *, pad: int) -> dict[str, torch.Tensor]:
    """Rows right-padded to the longest, with their attention mask."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.long)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], dtype=torch.long)
    return {"input_ids": ids, "attention_mask": mask}


class TextStream:
    """Rows of token ids from text files, read a block of paragraphs (lines) at a time and cycled for ever:
    a text of any size is streamed, never held in memory. Each block's paragraphs are shuffled (seeded) before
    they become rows, so a file in topic order still mixes within a block; the shipped recovery text is
    shuffled whole (scripts/make_calibration_text.py). Several files take turns a row at a time, each cycled
    on its own: a file listed after a large one is read from the first rows, not once the large one ends."""

    def __init__(
        self, tokenizer, files: list[Path], *, seq_len: int = 128, rows: Rows = "texts", seed: int = 0, block: int = 512
    ) -> None:
        for f in files:  # refuses a missing, unreadable or too short file before any training starts
            read_paragraphs([f])
        self.tokenizer, self.files, self.seq_len, self.rows, self.block = tokenizer, list(files), seq_len, rows, block
        self.rng = np.random.default_rng(seed)

    def _blocks(self, file: Path):
        block = []
        with open(file, encoding="utf-8") as lines:
            for line in lines:
                if line.strip() and not line.startswith("#"):
                    block.append(line.strip())
                    if len(block) == self.block:
                        yield block
                        block = []
        if block:
            yield block

    def _rows(self, file: Path):
        while True:
            made = 0
            for block in self._blocks(file):
                order = self.rng.permutation(len(block))
                paragraphs = [block[i] for i in order]
                for row in rows_of(self.tokenizer, paragraphs, seq_len=self.seq_len, rows=self.rows, rng=self.rng):
                    made += 1
                    yield row
            if not made:  # cycling it would never yield
                raise PruneSearchError(f"recovery text {file} holds too little text for a row of {self.seq_len} tokens")

    def __iter__(self):
        streams = [self._rows(f) for f in self.files]
        while True:
            for stream in streams:
                yield next(stream)


def mixed_rows(calibration: CalibrationSet, stream, *, share: float, held_back: int):
    """Rows for reconstruction and recovery, for ever: a ``share`` of them the calibration split's training rows
    (cycled; never its held-back or held-out rows), the rest from ``stream`` (a TextStream), interleaved evenly."""
    own = calibration.training_rows(held_back=held_back) if share > 0 else []
    other = iter(stream) if share < 1 else None
    debt, i = 0.0, 0
    while True:
        debt += share
        if debt >= 1.0 or other is None:
            debt -= 1.0
            yield own[i % len(own)]
            i += 1
        else:
            yield next(other)


def token_batches(rows, *, batch: int, pad: int, pool: int = 16):
    """Padded batches of ``batch`` rows from an iterator of rows: ``pool`` batches' worth at a time are sorted by
    length (little padding), cut into batches, and handed out in their original order of arrival."""
    rows = iter(rows)
    while True:
        taken = [r for _, r in zip(range(batch * pool), rows)]
        if not taken:
            return
        order = sorted(range(len(taken)), key=lambda i: len(taken[i]))
        groups = [order[i : i + batch] for i in range(0, len(order), batch)]
        for group in sorted(groups, key=min):
            yield pad_rows([taken[i] for i in group], pad=pad)


def first_tokens(batches, n_tokens: int) -> list[dict[str, torch.Tensor]]:
    """The first batches holding ``n_tokens`` real tokens."""
    out, seen = [], 0
    for b in batches:
        if seen >= n_tokens:
            break
        out.append(b)
        seen += int(b["attention_mask"].sum())
    return out


class CalibrationSet:
    """Deterministic calibration and held-out splits of some text for one tokenizer."""

    def __init__(
        self, tokenizer, paragraphs: list[str], *, seq_len: int = 128, seed: int = 0, rows: Rows = "chunks"
    ) -> None:
        if rows not in ("chunks", "texts"):
            raise PruneSearchError(f"calibration rows {rows!r}: choose 'chunks' (decoders) or 'texts' (encoders)")
        self.tokenizer = tokenizer
        self.seq_len = seq_len
        self.rows = rows
        self.seed = seed
        order = np.random.default_rng(seed).permutation(len(paragraphs))
        n_held = max(2, int(len(paragraphs) * HELDOUT_SHARE))
        self.heldout_paragraphs = [paragraphs[i] for i in order[:n_held]]
        self.calib_paragraphs = [paragraphs[i] for i in order[n_held:]]
        digest = hashlib.sha256("\n".join(paragraphs).encode())
        digest.update(f"{seq_len}:{seed}:{rows}:{getattr(tokenizer, 'name_or_path', '')}".encode())
        self.fingerprint = digest.hexdigest()[:16]

    def _rows_of(self, paragraphs: list[str]) -> list[list[int]]:
        return rows_of(
            self.tokenizer, paragraphs, seq_len=self.seq_len, rows=self.rows, rng=np.random.default_rng(self.seed)
        )

    @cached_property
    def _calib(self) -> list[list[int]]:
        return self._rows_of(self.calib_paragraphs)

    @cached_property
    def _heldout(self) -> list[list[int]]:
        return self._rows_of(self.heldout_paragraphs)

    def _take(self, rows: list[list[int]], n_tokens: int) -> dict[str, torch.Tensor]:
        """The first rows holding at least ``n_tokens`` real tokens, right-padded to the longest."""
        lengths = np.cumsum([len(r) for r in rows])
        if not len(rows) or lengths[-1] < n_tokens:
            raise PruneSearchError(
                f"calibration text holds {int(lengths[-1]) if len(rows) else 0} tokens, {n_tokens} asked; "
                "give more text or a smaller budget"
            )
        return self._pad(rows[: int(np.searchsorted(lengths, n_tokens)) + 1])

    def _pad(self, taken: list[list[int]]) -> dict[str, torch.Tensor]:
        return pad_rows(taken, pad=self.tokenizer.pad_token_id or 0)

    def calib(self, n_tokens: int) -> dict[str, torch.Tensor]:
        """The calibration split's first rows holding ``n_tokens``: what fitness scores on (budgets nest)."""
        return self._take(self._calib, n_tokens)

    def _split_tail(self, held_back: int) -> int:
        """The index of the first row of the calibration split's last ``held_back`` tokens."""
        lengths = np.cumsum([len(r) for r in self._calib[::-1]])
        if not len(lengths) or lengths[-1] <= 2 * held_back:
            raise PruneSearchError(
                f"calibration text too short to hold back {held_back} tokens for validation; give more text"
            )
        return len(self._calib) - int(np.searchsorted(lengths, held_back)) - 1

    def validation(self, n_tokens: int) -> dict[str, torch.Tensor]:
        """The calibration split's last rows holding ``n_tokens``: held back from training to stop it early."""
        return self._pad(self._calib[self._split_tail(n_tokens) :])

    def training_rows(self, *, held_back: int, skip: int = 0) -> list[list[int]]:
        """The calibration split's training rows: after its first ``skip`` tokens, before the last ``held_back``
        ones (validation)."""
        rows = self._calib[: self._split_tail(held_back)]
        if skip:
            start = int(np.searchsorted(np.cumsum([len(r) for r in rows]), skip)) + 1
            if start >= len(rows):
                raise PruneSearchError(
                    f"calibration text holds no training rows beyond the first {skip} tokens; "
                    "give more text or a smaller budget"
                )
            rows = rows[start:]
        return rows

    def training(self, n_tokens: int, *, held_back: int, skip: int = 0) -> dict[str, torch.Tensor]:
        """``n_tokens`` of ``training_rows``, cycled when asked for more than they hold."""
        rows = self.training_rows(held_back=held_back, skip=skip)
        taken, total = [], 0
        while total < n_tokens:
            for r in rows:
                taken.append(r)
                total += len(r)
                if total >= n_tokens:
                    break
        return self._pad(taken)

    def heldout(self, n_tokens: int) -> dict[str, torch.Tensor]:
        return self._take(self._heldout, n_tokens)

    def heldout_sentences(self, n: int = 512) -> dict[str, torch.Tensor]:
        """The first ``n`` held-out sentences, padded into one batch (sentence-embedding evaluation)."""
        sentences = sentences_of(self.heldout_paragraphs)[:n]
        return dict(
            self.tokenizer(sentences, padding=True, truncation=True, max_length=self.seq_len, return_tensors="pt")
        )


def load_calibration(
    tokenizer, *, files: list[Path] | None = None, seq_len: int = 128, seed: int = 0, rows: Rows = "chunks"
) -> CalibrationSet:
    """The user's text files, or the shipped default (general and technical English, ``DEFAULT_FILES``).
    ``rows``: ``"chunks"`` for decoders, ``"texts"`` for encoders (see the module docstring)."""
    if tokenizer is None:
        raise PruneSearchError("this model has no tokenizer; calibration needs one (save it beside the weights)")
    return CalibrationSet(tokenizer, read_paragraphs(files or DEFAULT_FILES), seq_len=seq_len, seed=seed, rows=rows)
