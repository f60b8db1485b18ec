"""Reconstruction quality: what importance and least-squares reconstruction buy at fixed sizes.

MiniLM: mean cosine of mean-pooled held-out sentence embeddings to the dense model, at
uniform {10 heads, FFN 1280}, {8, 1024}, {6, 768}. SmolLM2-135M: held-out perplexity at
uniform 25% and 50% pruning of KV groups and FFN width, with and without reconstruction.

    .venv/bin/python benchmarks/reconstruction_quality.py [--skip-smollm2]

Writes reports/reconstruction_quality.md and .csv.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import pandas as pd
import torch

import prunesearch as ps
from prunesearch._quality import embedding_cosine, embeddings, perplexity
from prunesearch.oracle import cpu_name
from prunesearch.prune import LevelDatabase, load_calibration

REPORTS = Path(__file__).resolve().parents[1] / "reports"
MINILM_POINTS = [(10, 1280), (8, 1024), (6, 768)]
# (label, calibration rows, database options or None for plain magnitude with no reconstruction)
METHODS = [
    ("magnitude, no reconstruction", "texts", None),
    (
        "naive refit: magnitude, least squares on packed 128-token chunks",
        "chunks",
        dict(importance="magnitude", target="block"),
    ),
    ("Wanda, no reconstruction", "texts", dict(importance="wanda", reconstruct=False)),
    ("Taylor (first order, random embedding projections), least squares on texts", "texts", dict(importance="taylor")),
    (
        "Wanda, 4 streams (expected upstream error), corrected target, texts",
        "texts",
        dict(importance="wanda", streams=4),
    ),
    ("Wanda, least squares on packed chunks", "chunks", dict(importance="wanda")),
    ("Wanda, least squares on texts (default)", "texts", dict(importance="wanda")),
]


def minilm_rows() -> list[dict]:
    loaded = ps.load_model("minilm")
    space = ps.adapter_for(loaded.model).space()
    calibrations = {rows: load_calibration(loaded.tokenizer, rows=rows) for rows in ("chunks", "texts")}
    sentences = calibrations["texts"].heldout_sentences(512)  # the split does not depend on the rows
    dense = embeddings(loaded.model, sentences)
    rows = []
    for label, calibration_rows, options in METHODS:
        started = time.monotonic()
        source = (
            None
            if options is None
            else LevelDatabase.build(loaded, calibrations[calibration_rows], space=space, cache=False, **options)
        )
        seconds = time.monotonic() - started
        for heads, ffn in MINILM_POINTS:
            model = ps.prune(loaded.model, space.uniform_config(heads=heads, ffn=ffn), source)
            rows.append(
                {
                    "model": "minilm",
                    "method": label,
                    "point": f"{heads} heads / FFN {ffn}",
                    "metric": "mean cosine",
                    "value": embedding_cosine(model, dense, sentences),
                    "database_s": round(seconds, 1),
                }
            )
            print(rows[-1])
    return rows


def smollm2_rows() -> tuple[list[dict], str]:
    loaded = ps.load_model("smollm2")
    calibration = load_calibration(loaded.tokenizer, rows="chunks")
    space = ps.adapter_for(loaded.model).space()
    heldout = calibration.heldout(4096)
    rows = [
        {
            "model": "smollm2",
            "method": "dense",
            "point": "9 heads / FFN 1536",
            "metric": "perplexity",
            "value": perplexity(loaded.model, heldout),
            "database_s": 0.0,
        }
    ]
    points = [("25%", 6, 1152), ("50%", 3, 768)]  # 9 heads in 3 KV groups: whole groups of 3
    sample = ""
    for label, options in (
        ("magnitude, no reconstruction", None),
        ("Wanda, least squares (default)", dict(importance="wanda")),
    ):
        started = time.monotonic()
        source = (
            None if options is None else LevelDatabase.build(loaded, calibration, space=space, cache=False, **options)
        )
        seconds = time.monotonic() - started
        for share, heads, ffn in points:
            model = ps.prune(loaded.model, space.uniform_config(heads=heads, ffn=ffn), source)
            rows.append(
                {
                    "model": "smollm2",
                    "method": label,
                    "point": f"{share}: {heads} heads / FFN {ffn}",
                    "metric": "perplexity",
                    "value": perplexity(model, heldout),
                    "database_s": round(seconds, 1),
                }
            )
            print(rows[-1])
            if options is not None and share == "25%":
                prompt = loaded.tokenizer("The capital of France is", return_tensors="pt")
                with torch.no_grad():
                    out = model.generate(**prompt, max_new_tokens=20, do_sample=False, use_cache=True)
                sample = loaded.tokenizer.decode(out[0], skip_special_tokens=True)
    return rows, sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-smollm2", action="store_true")
    args = parser.parse_args()
    rows = minilm_rows()
    sample = ""
    if not args.skip_smollm2:
        more, sample = smollm2_rows()
        rows += more
    df = pd.DataFrame(rows)
    REPORTS.mkdir(exist_ok=True)
    df.to_csv(REPORTS / "reconstruction_quality.csv", index=False)
    lines = [
        "# Reconstruction quality",
        "",
        f"Command: `.venv/bin/python benchmarks/reconstruction_quality.py`; {dt.date.today()}; CPU: {cpu_name()}.",
        "Calibration: the shipped text (Python standard-library docstrings), held-out split never used for fitting;",
        "'chunks' = packed 128-token rows, 'texts' = separate texts of 16-128 tokens with their own [CLS]/[SEP].",
        "Least squares pulls towards the dense weights of the kept columns (ridge 1% of the mean Gram diagonal).",
        "MiniLM: mean cosine of mean-pooled embeddings of 512 held-out sentences to the dense model",
        "(higher is better).",
        "With one stream the stream is the dense model, so a corrected target equals the block output.",
        "database_s: seconds to build that level database (every layer, every level) on 2 cores.",
        "SmolLM2-135M: perplexity on 4,096 held-out tokens (lower is better); its weights went through 4-bit GGUF",
        "quantisation upstream, fine for relative comparisons. 25%/50% keep 6/3 of 9 heads (whole KV groups of 3).",
        "",
    ]
    for model, part in df.groupby("model", sort=False):
        table = part.pivot_table(index="method", columns="point", values="value", sort=False)
        lines += [f"## {model} ({part.metric.iloc[0]})", "", table.to_markdown(floatfmt=".4f"), ""]
    if sample:
        lines += ["SmolLM2 25% with reconstruction, greedy with KV cache:", "", f"> {sample!r}", ""]
    (REPORTS / "reconstruction_quality.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
