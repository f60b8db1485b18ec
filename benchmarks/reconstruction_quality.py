"""Reconstruction quality: what importance and least-squares reconstruction buy at fixed sizes.

Level database methods (--methods): MiniLM: mean cosine of mean-pooled held-out sentence embeddings to the
dense model, at uniform {10 heads, FFN 1280}, {8, 1024}, {6, 768}. SmolLM2-135M: held-out perplexity at
uniform 25% and 50% pruning of KV groups and FFN width, with and without reconstruction.

Sequential refit (always): today's per-level fit (the level database: each level fitted on dense inputs)
against the error-correcting refit of the whole pruned model, layer by layer on its own inputs
(prune/reconstruct.refit_sequentially), on the recovery text; MiniLM scored by STS-B dev Spearman (a pairs
file, ../shared/data/stsb-en-dev.csv) and by mean cosine to the dense model on Debian's fortunes and on the
calibration text's held-out part; SmolLM2 by perplexity on the same texts. No distillation.

    .venv/bin/python benchmarks/reconstruction_quality.py [--methods] [--skip-smollm2] [--sts PAIRS]

Writes reports/reconstruction_quality.md and .csv.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import pandas as pd
import torch

import prunesearch as ps
from prunesearch import HeldOut, SentencePairs, embedding_cosine, embeddings, perplexity
from prunesearch.oracle import cpu_name
from prunesearch.prune import LevelDatabase, load_calibration

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
STS_DEV = ROOT.parent / "shared" / "data" / "stsb-en-dev.csv"
#: heads/FFN per layer of a config measured at about 2x on ONNX Runtime CPU (the demo's pick)
DEMO_PICK = [(5, 768), (5, 640), (6, 768), (5, 640), (5, 896), (8, 512)]
#: (label, refit tokens, share of calibration rows in the refit text)
REFITS = [
    ("sequential refit, 131k tokens (half calibration, half WordNet)", 131_072, 0.5),
    ("sequential refit, 262k tokens (half calibration, half WordNet)", 262_144, 0.5),
    ("sequential refit, 262k tokens of WordNet", 262_144, 0.0),
]
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


def sequential_rows(name: str, points: dict, *, sts: Path | None, refits: list) -> list[dict]:
    """Per point: the per-level fit, then each sequential refit of it; scored on held-out text (and STS pairs)."""
    from prunesearch import Config, build_database
    from prunesearch.prune._calibration import first_tokens
    from prunesearch.prune._reconstruct import refit_sequentially
    from prunesearch.prune._recover import RecoveryOptions, recovery_batches

    loaded = ps.load_model(name)
    space = ps.adapter_for(loaded.model).space()
    calibration, database = build_database(loaded, space)
    held = HeldOut(loaded, calibration, sts=SentencePairs.read(sts) if sts and not loaded.is_decoder else None)
    rows = []

    def row(point, method, model, seconds):
        scores = held(model)
        for text, values in scores.items():
            for metric, value in values.items():
                rows.append(
                    {"model": name, "point": point, "method": method, "text": text, "metric": metric, "value": value}
                )
        rows.append(
            {"model": name, "point": point, "method": method, "text": "-", "metric": "seconds", "value": seconds}
        )
        print(rows[-2:], flush=True)

    row("dense", "dense", loaded.model, 0.0)
    for point, layers in points.items():
        config = Config.from_dict({"layers": [{"heads": h, "ffn": f} for h, f in layers]})
        row(point, "per-level fit (level database)", ps.prune(loaded.model, config, database), 0.0)
        for label, tokens, share in refits:
            student = ps.prune(loaded.model, config, database)
            options = RecoveryOptions(calibration_share=share)
            batches = recovery_batches(calibration, options=options, is_decoder=loaded.is_decoder, batch=64)
            result = refit_sequentially(student, loaded.model, first_tokens(batches, tokens), damp=1e-3)
            row(point, label, student, result.seconds)
    return rows


def sequential_report(df: pd.DataFrame) -> list[str]:
    lines = []
    for model, part in df.groupby("model", sort=False):
        scored = part[part.metric != "seconds"]
        table = scored.pivot_table(index=["point", "method"], columns=["text", "metric"], values="value", sort=False)
        seconds = part[part.metric == "seconds"].set_index(["point", "method"]).value.rename("refit s")
        table.columns = [f"{t} {m}" for t, m in table.columns]
        lines += [
            f"## {model}: per-level fit against sequential refit",
            "",
            table.join(seconds).to_markdown(floatfmt=".4f"),
            "",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", action="store_true", help="also compare the level database's methods")
    parser.add_argument("--skip-smollm2", action="store_true")
    parser.add_argument("--sts", type=Path, default=STS_DEV if STS_DEV.is_file() else None)
    args = parser.parse_args()
    started = time.monotonic()
    sequential = sequential_rows(
        "minilm", {"demo 2x pick": DEMO_PICK, "uniform 6/768": [(6, 768)] * 6}, sts=args.sts, refits=REFITS
    )
    if not args.skip_smollm2:
        sequential += sequential_rows("smollm2", {"uniform 25%: 6/1152": [(6, 1152)] * 30}, sts=None, refits=REFITS[:1])
    seq = pd.DataFrame(sequential)
    REPORTS.mkdir(exist_ok=True)
    seq.to_csv(REPORTS / "reconstruction_sequential.csv", index=False)
    rows, sample = [], ""
    if args.methods:
        rows = minilm_rows()
        if not args.skip_smollm2:
            more, sample = smollm2_rows()
            rows += more
    lines = [
        "# Reconstruction quality",
        "",
        f"Command: `.venv/bin/python benchmarks/reconstruction_quality.py {' '.join(sys.argv[1:])}`; "
        f"{dt.date.today()}; CPU: {cpu_name()}; {(time.monotonic() - started) / 60:.0f} minutes.",
        "",
        "Sequential refit: the pruned model's output projections refitted layer by layer, in order, on its own",
        "inputs against the dense model's residual stream (ridge 1e-3 towards the per-level fit), on the recovery",
        "text (WordNet definitions and examples, and the calibration text's training rows); no distillation.",
        "STS: Spearman of embedding cosine against the gold scores of STS-B dev (evaluation only). Cosine: mean",
        "cosine of mean-pooled embeddings to the dense model: out-of-domain = Debian's fortunes, in-domain = the",
        "calibration text's held-out part. SmolLM2: perplexity (lower is better) and KL to the dense model.",
        "refit s: seconds of the refit on this machine's 2 cores (bf16 passes where the CPU has AVX512-BF16).",
        "",
        *sequential_report(seq),
    ]
    if not rows:
        (REPORTS / "reconstruction_quality.md").write_text("\n".join(lines))
        print("\n".join(lines))
        return
    df = pd.DataFrame(rows)
    df.to_csv(REPORTS / "reconstruction_quality.csv", index=False)
    lines += [
        "## Level database methods",
        "",
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
