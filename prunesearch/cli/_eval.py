"""``prunesearch eval MODEL``: the quality users measure, for an export folder or a dense model.

An encoder: STS Spearman of its sentence embeddings' cosine against the gold scores of a pairs file.
A decoder: perplexity on a text file. Both are the functions export's quality report uses (_quality.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from prunesearch.cli._app import app, console
from prunesearch.errors import PruneSearchError


@app.command("eval")
def evaluate(
    model: str = typer.Argument(
        ..., help="an export folder (prunesearch export --out), a model alias (minilm, smollm2) or a local HF folder"
    ),
    sts: Path = typer.Option(
        None, "--sts", help="encoders: a pairs file (sentence 1, sentence 2, gold score; CSV or TSV) to score"
    ),
    text: Path = typer.Option(None, "--text", help="decoders: a UTF-8 text file to measure perplexity on"),
    tokens: int = typer.Option(16384, "--tokens", min=1, help="decoders: tokens of --text scored at most"),
    seq_len: int = typer.Option(128, "--seq-len", min=2, help="decoders: tokens per scored row"),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object"),
) -> None:
    """Score MODEL: an encoder's STS Spearman on --sts, or a decoder's perplexity on --text."""
    from prunesearch._models import load_model

    if (sts is None) == (text is None):
        raise PruneSearchError("give --sts PAIRS (an encoder) or --text FILE (a decoder), one of the two")
    for path in (sts, text):
        if path is not None and not path.is_file():
            raise PruneSearchError(f"file not found: {path}")
    loaded = load_model(model)
    if loaded.tokenizer is None:
        raise PruneSearchError(f"{model} has no tokenizer saved beside its weights; scoring needs one")
    if sts is not None:
        result = _sts(loaded, sts)
    else:
        result = _perplexity(loaded, text, tokens=tokens, seq_len=seq_len)
    console.print(json.dumps(result) if as_json else result["line"], highlight=False, soft_wrap=True)


def _sts(loaded, path: Path) -> dict:
    from prunesearch._quality import SentencePairs, sts_spearman

    if loaded.is_decoder:
        raise PruneSearchError(
            f"--sts scores sentence embeddings, and {loaded.name} is a decoder: give --text FILE for its perplexity"
        )
    pairs = SentencePairs.read(path)
    value = sts_spearman(loaded.model, loaded.tokenizer, pairs)
    line = f"{loaded.name}: STS Spearman {value:.4f} on {len(pairs.gold):,} pairs of {path}"
    return {"model": loaded.name, "metric": "sts_spearman", "value": value, "pairs": len(pairs.gold), "line": line}


def _perplexity(loaded, path: Path, *, tokens: int, seq_len: int) -> dict:
    from prunesearch._quality import perplexity
    from prunesearch.prune._calibration import chunk_rows, pad_rows, read_paragraphs

    if not loaded.is_decoder:
        raise PruneSearchError(
            f"--text measures a decoder's perplexity, and {loaded.name} is an encoder: give --sts PAIRS for its "
            "STS Spearman"
        )
    if path.suffix.lower() in (".csv", ".tsv"):
        raise PruneSearchError(f"{path} looks like a pairs file; --text takes plain text (one paragraph a line)")
    rows = chunk_rows(loaded.tokenizer, read_paragraphs([path]), seq_len=seq_len)
    taken = rows[: max(1, -(-tokens // seq_len))]
    if not taken:
        raise PruneSearchError(f"{path} holds fewer than {seq_len} tokens; give more text or a smaller --seq-len")
    batch = pad_rows(taken, pad=loaded.tokenizer.pad_token_id or 0)
    value = perplexity(loaded.model, batch)
    n = int(batch["attention_mask"].sum())
    line = f"{loaded.name}: perplexity {value:.3f} on {n:,} tokens of {path}"
    return {"model": loaded.name, "metric": "perplexity", "value": value, "tokens": n, "line": line}
