"""Fitness that predicts the metric: does the search's loss rank configs as STS-B does after reconstruction?

Random MiniLM configs at one predicted speed-up (a latency table's prediction, within 1% of the target) are
scored by the search's fitness (search/fitness.py: 1 - cosine of mean-pooled embeddings to the dense model,
layer by layer from the level database, on the calibration rows a search scores on), and by candidate
fitnesses computed from the same pruned hidden states: the similarity structure of the batch (mean absolute
difference of the pairwise cosine matrices of the rows' embeddings, student against dense) and the mean
per-token cosine. Each config is then pruned, refitted layer by layer (prune/reconstruct.refit_sequentially,
``--refit-tokens`` of the recovery text) and scored on STS-B dev (evaluation only). Reported: Spearman between
each fitness (negated: lower loss should mean higher STS) and STS-B dev after the refit, and before it.

    .venv/bin/python benchmarks/fitness_quality.py [--configs 24 --speedup 2 --refit-tokens 65536 --table T]

Writes reports/fitness_quality.{md,csv}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from prunesearch import SentencePairs, build_database, mean_pool, spearman, sts_spearman
from prunesearch.oracle import LatencyTable, Predictor
from prunesearch.prune import prune
from prunesearch.prune._calibration import first_tokens
from prunesearch.prune._reconstruct import refit_sequentially
from prunesearch.prune._recover import RecoveryOptions, recovery_batches
from prunesearch.search import DistillationFitness
from prunesearch.space import adapter_for

ROOT = Path(__file__).resolve().parents[1]
STS_DEV = ROOT.parent / "shared" / "data" / "stsb-en-dev.csv"
TABLE = next((ROOT / "latency_tables").glob("*/minilm-ort-cpu-b1-s128-t1.csv"), None)


def sample(space, predictor: Predictor, *, n: int, speedup: float, rng: np.random.Generator) -> list:
    """``n`` distinct random genomes whose predicted speed-up is within 1% of ``speedup``."""
    found: dict[bytes, np.ndarray] = {}
    upper = space.genome_upper
    while len(found) < n:
        genomes = rng.integers(0, upper + 1, size=(20_000, len(upper)))
        ok = genomes[np.abs(predictor.speedup(genomes) / speedup - 1) < 0.01]
        for g in ok[: n - len(found)]:
            found[g.tobytes()] = g
    return [space.from_genome(g) for g in found.values()]


@torch.no_grad()
def candidate_losses(fitness: DistillationFitness, config) -> dict[str, float]:
    """Fitnesses computed from the pruned model's last hidden states of the scored rows."""
    parts = len(fitness.parts)
    hidden = fitness._layerwise(config, parts)
    dense = fitness._whole(fitness.model, parts)
    s = torch.cat([mean_pool(h.float(), p["attention_mask"]) for h, p in zip(hidden, fitness.parts)])
    t = torch.cat([mean_pool(h.float(), p["attention_mask"]) for h, p in zip(dense, fitness.parts)])
    sim = lambda e: torch.nn.functional.normalize(e, dim=-1) @ torch.nn.functional.normalize(e, dim=-1).T  # noqa: E731
    tokens = [
        (1 - torch.cosine_similarity(h.float(), d.float(), dim=-1))[p["attention_mask"].bool()]
        for h, d, p in zip(hidden, dense, fitness.parts)
    ]
    return {
        "pooled cosine (search)": float((1 - torch.cosine_similarity(s, t, dim=-1)).mean()),
        "similarity structure": float((sim(s) - sim(t)).abs().mean()),
        "token cosine": float(torch.cat(tokens).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=24)
    ap.add_argument("--speedup", type=float, default=2.0)
    ap.add_argument("--refit-tokens", type=int, default=65_536)
    ap.add_argument("--tokens", type=int, default=8192, help="calibration tokens the fitness scores on")
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--sts", type=Path, default=STS_DEV)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "fitness_quality")
    args = ap.parse_args()
    torch.manual_seed(0)
    from prunesearch import load_model

    loaded = load_model("minilm")
    space = adapter_for(loaded.model).space()
    calibration, database = build_database(loaded, space)
    predictor = Predictor(LatencyTable.load(args.table), space)
    pairs = SentencePairs.read(args.sts)
    fitness = DistillationFitness(loaded.model, database, calibration.calib(args.tokens), is_decoder=False)
    options = RecoveryOptions()
    refit_rows = first_tokens(
        recovery_batches(calibration, options=options, is_decoder=False, batch=64), args.refit_tokens
    )
    rows = []
    for config in sample(space, predictor, n=args.configs, speedup=args.speedup, rng=np.random.default_rng(0)):
        student = prune(loaded.model, config, database)
        row = {
            "config": str(config),
            "predicted speed-up": float(predictor.speedup(space.to_genome(config)[None])[0]),
            "fitness": fitness(config, args.tokens),
            **candidate_losses(fitness, config),
            "sts pruned": sts_spearman(student, loaded.tokenizer, pairs),
        }
        refit_sequentially(student, loaded.model, refit_rows, damp=options.reconstruction.damp)
        row["sts refitted"] = sts_spearman(student, loaded.tokenizer, pairs)
        rows.append(row)
        print(row, flush=True)
    df = pd.DataFrame(rows)
    losses = ["fitness", "pooled cosine (search)", "similarity structure", "token cosine"]
    summary = pd.DataFrame(
        [
            {
                "fitness": name,
                "Spearman with STS-B dev after refit": spearman(-df[name], df["sts refitted"]),
                "with STS-B dev before refit": spearman(-df[name], df["sts pruned"]),
            }
            for name in losses
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out.with_suffix(".csv"), index=False)
    md = [
        "# Fitness against STS-B dev",
        "",
        f"Command: `.venv/bin/python benchmarks/fitness_quality.py {' '.join(sys.argv[1:])}`; {dt.date.today()}. "
        f"{len(df)} random MiniLM configs predicted at {args.speedup}x (within 1%) by {args.table.name} "
        f"({args.table.parent.name}); fitness on {args.tokens:,} calibration tokens as the search scores; refit "
        f"on {args.refit_tokens:,} tokens of the recovery text; STS-B dev Spearman before and after it. "
        f"STS-B dev after the refit ranges {df['sts refitted'].min():.4f}-{df['sts refitted'].max():.4f}.",
        "",
        summary.to_markdown(index=False, floatfmt=".3f"),
        "",
        "fitness = the search's value (the same as 'pooled cosine (search)', computed by DistillationFitness).",
        "",
        df.to_markdown(index=False, floatfmt=".4f"),
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
