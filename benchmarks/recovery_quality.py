"""Recovery that scales: what reconstruction and longer distillation buy on a fixed pick, and what they cost.

One MiniLM config (default: the demo's measured 2x pick) is pruned from the level database, refitted layer
by layer (recovery.reconstruction), then distilled towards the dense model at several token budgets, each
from the same refitted state, on the streamed recovery text (WordNet definitions and examples, and the
calibration text's training rows), with the schedule of RecoveryOptions (warm-up, cosine decay). Each
stage is scored as export scores it (export/recovery.recovered: STS-B dev Spearman, mean cosine to the dense
model on Debian's fortunes and on the calibration text's held-out part); each budget's validation-loss curve
is kept. The first budget's run is timed end to end as an export runs it (scores, refit, distillation).

    .venv/bin/python benchmarks/recovery_quality.py [--budgets 65536 131072 1048576] [--sts PAIRS]

Writes reports/recovery_quality.{md,csv}.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from prunesearch import Config, HeldOut, SentencePairs, build_database, load_model
from prunesearch.export import recovered
from prunesearch.oracle import cpu_name
from prunesearch.prune import prune
from prunesearch.prune._calibration import first_tokens
from prunesearch.prune._reconstruct import refit_sequentially
from prunesearch.prune._recover import ReconstructionOptions, RecoveryOptions, recover, recovery_batches
from prunesearch.space import adapter_for

ROOT = Path(__file__).resolve().parents[1]
STS_DEV = ROOT.parent / "shared" / "data" / "stsb-en-dev.csv"
DEMO_PICK = "5/768 5/640 6/768 5/640 5/896 8/512"


def flat(scores: dict) -> dict[str, float]:
    return {f"{text} {metric}": value for text, values in scores.items() for metric, value in values.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=DEMO_PICK, help="heads/ffn per layer, space-separated")
    ap.add_argument("--budgets", type=int, nargs="+", default=[65_536, 131_072, 1_048_576])
    ap.add_argument("--sts", type=Path, default=STS_DEV if STS_DEV.is_file() else None)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "recovery_quality")
    args = ap.parse_args()
    torch.manual_seed(0)
    loaded = load_model("minilm")
    space = adapter_for(loaded.model).space()
    calibration, database = build_database(loaded, space)
    config = Config.from_dict(
        {"layers": [{"heads": int(h), "ffn": int(f)} for h, f in (p.split("/") for p in args.config.split())]}
    )
    rows, curves = [], {}

    # the first budget as an export runs it, end to end: scores, refit, distillation, scores
    student = prune(loaded.model, config, database)
    started = time.monotonic()
    quality, record = recovered(
        loaded, student, calibration, options=RecoveryOptions(tokens=args.budgets[0]), sts=args.sts
    )
    export_s = time.monotonic() - started
    for stage in ("dense", "pruned", "reconstructed", "recovered"):
        scores = {text: stages[stage] for text, stages in quality.items()}
        rows.append({"stage": stage, "tokens": args.budgets[0] if stage == "recovered" else 0, **flat(scores)})
    rows[-1]["seconds"] = record["seconds"]
    rows[-2]["seconds"] = record["reconstruction"]["seconds"]
    curves[args.budgets[0]] = record["history"]
    print(rows, flush=True)

    # longer budgets from the same refitted state (the refit is deterministic: redone, not stored)
    held = HeldOut(loaded, calibration, sts=SentencePairs.read(args.sts) if args.sts else None)
    refitted = prune(loaded.model, config, database)
    refit = ReconstructionOptions()
    batches = recovery_batches(calibration, options=RecoveryOptions(), is_decoder=False, batch=refit.micro_batch)
    refit_sequentially(refitted, loaded.model, first_tokens(batches, refit.budget(is_decoder=False)), damp=refit.damp)
    for tokens in args.budgets[1:]:
        student = copy.deepcopy(refitted)
        options = RecoveryOptions(tokens=tokens, validate_every=max(10, tokens // 16_000 // 8))
        result = recover(student, loaded.model, calibration, is_decoder=False, options=options)
        rows.append({"stage": "recovered", "tokens": result.tokens, **flat(held(student)), "seconds": result.seconds})
        curves[tokens] = result.history
        print(rows[-1], flush=True)
        write(args, rows, curves, export_s=export_s)
    write(args, rows, curves, export_s=export_s)


def write(args, rows: list[dict], curves: dict, *, export_s: float) -> None:
    df = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out.with_suffix(".csv"), index=False)
    dense = df[df.stage == "dense"].iloc[0]
    sts = next((c for c in df.columns if c.startswith("sts ")), None)
    if sts:
        df["sts / dense"] = df[sts] / dense[sts]
    curve_lines = []
    for tokens, history in curves.items():
        points = ", ".join(f"{seen:,}: {loss:.4f}" for seen, loss in history[:: max(1, len(history) // 12)])
        curve_lines.append(f"- {tokens:,} tokens: {points}; last {history[-1][0]:,}: {history[-1][1]:.4f}")
    md = [
        "# Recovery quality: reconstruction and distillation on a fixed pick",
        "",
        f"Command: `.venv/bin/python benchmarks/recovery_quality.py {' '.join(sys.argv[1:])}`; {dt.date.today()}; "
        f"CPU: {cpu_name()}, 2 cores. Config {args.config} (heads/FFN per layer).",
        "Pruned from the level database (Wanda ranking, per-level least squares); reconstructed = refitted layer "
        "by layer on its own inputs (262,144 tokens); recovered = distilled towards the dense model on that many "
        f"tokens of the streamed recovery text (lr {RecoveryOptions().lr:g}, 10% warm-up, cosine decay to 10%), "
        "early-stopped on held-back calibration rows. STS: Spearman on STS-B dev (evaluation only, never trained "
        "on); cosine: mean cosine of sentence embeddings to the dense model (out-of-domain: Debian's fortunes).",
        f"The first budget run end to end as an export runs it (four scorings, refit, distillation): "
        f"**{export_s:.0f} s**.",
        "",
        df.to_markdown(index=False, floatfmt=".4f"),
        "",
        "Validation loss (held-back calibration rows) against training tokens:",
        "",
        *curve_lines,
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
