"""Fitness that predicts the metric: does the search's loss rank configs as STS-B does after reconstruction?

Random MiniLM configs at one predicted speed-up (a latency table's prediction, within 1% of the target) are
scored by the search's fitness (search/fitness.py: 1 - cosine of mean-pooled embeddings to the dense model,
layer by layer from the level database, on the calibration rows a search scores on) and by other losses of
the same pruned model against the dense one:

- similarity structure: mean absolute difference of the pairwise cosine matrices of the scored rows' embeddings;
- token cosine: 1 - mean per-token cosine of the last hidden states;
- sentence pair ranks: 1 - Spearman between the pruned and the dense model's cosines over every pair of 512
  held-out calibration sentences (what STS asks of an embedding: rank pairs as the dense model does).

Each config is then pruned, refitted layer by layer (prune/reconstruct.refit_sequentially, ``--refit-tokens``
of the recovery text) and scored on STS-B dev (evaluation only). Every loss is taken twice: one-shot, as the
search sees the config, and after that same refit, which bounds what any of them could predict from
calibration text. ``--retest`` refits each config a second time on a further ``--refit-tokens`` of the
recovery text (after the first's): the Spearman between the two STS-B dev columns is how repeatable the metric
itself is. Reported: Spearman between each loss (negated: lower loss should mean higher STS) and STS-B dev after
the refit.

    .venv/bin/python benchmarks/fitness_quality.py [--configs 24 --speedup 2 --refit-tokens 65536 --retest --table T]

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

from prunesearch import SentencePairs, build_database, embeddings, mean_pool, spearman, sts_spearman
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
LOSSES = ["pooled cosine", "similarity structure", "token cosine", "sentence pair ranks"]


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


class Losses:
    """Every loss of a pruned model against the dense one, from the fitness's scored rows and held-out sentences."""

    def __init__(self, fitness: DistillationFitness, sentences: dict[str, torch.Tensor]) -> None:
        self.fitness, self.sentences = fitness, sentences
        self.parts = len(fitness.parts)
        self.dense = fitness._whole(fitness.model, self.parts)
        self.pairs = np.triu_indices(len(sentences["input_ids"]), 1)
        self.dense_pairs = self._pair_cosines(fitness.model)

    @torch.no_grad()
    def _pair_cosines(self, model) -> np.ndarray:
        e = torch.nn.functional.normalize(embeddings(model, self.sentences).float(), dim=-1)
        return (e @ e.T).numpy()[self.pairs]

    @torch.no_grad()
    def __call__(self, hidden: list[torch.Tensor], model) -> dict[str, float]:
        """``hidden``: the pruned model's last hidden states of the scored rows; ``model``: the pruned model."""
        parts = self.fitness.parts
        s = torch.cat([mean_pool(h.float(), p["attention_mask"]) for h, p in zip(hidden, parts)])
        t = torch.cat([mean_pool(h.float(), p["attention_mask"]) for h, p in zip(self.dense, parts)])
        sim = lambda e: torch.nn.functional.normalize(e, dim=-1) @ torch.nn.functional.normalize(e, dim=-1).T  # noqa: E731
        tokens = [
            (1 - torch.cosine_similarity(h.float(), d.float(), dim=-1))[p["attention_mask"].bool()]
            for h, d, p in zip(hidden, self.dense, parts)
        ]
        return {
            "pooled cosine": float((1 - torch.cosine_similarity(s, t, dim=-1)).mean()),
            "similarity structure": float((sim(s) - sim(t)).abs().mean()),
            "token cosine": float(torch.cat(tokens).mean()),
            "sentence pair ranks": 1 - spearman(self._pair_cosines(model), self.dense_pairs),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=24)
    ap.add_argument("--speedup", type=float, default=2.0)
    ap.add_argument("--refit-tokens", type=int, default=65_536)
    ap.add_argument("--retest", action="store_true", help="refit each config again on further recovery text")
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
    losses = Losses(fitness, calibration.heldout_sentences(512))
    options = RecoveryOptions()
    stream = recovery_batches(calibration, options=options, is_decoder=False, batch=64)
    refit_rows = [first_tokens(stream, args.refit_tokens)]
    if args.retest:
        refit_rows.append(first_tokens(stream, args.refit_tokens))  # the stream goes on past the first's rows

    def refitted(student: torch.nn.Module, rows) -> torch.nn.Module:
        refit_sequentially(student, loaded.model, rows, damp=options.reconstruction.damp)
        return student

    rows = []
    for config in sample(space, predictor, n=args.configs, speedup=args.speedup, rng=np.random.default_rng(0)):
        pruned = prune(loaded.model, config, database)
        row = {
            "config": str(config),
            "predicted speed-up": float(predictor.speedup(space.to_genome(config)[None])[0]),
            "fitness": fitness(config, args.tokens),
            **{f"{k}, one-shot": v for k, v in losses(fitness._layerwise(config, losses.parts), pruned).items()},
            "sts pruned": sts_spearman(pruned, loaded.tokenizer, pairs),
        }
        student = refitted(pruned, refit_rows[0])  # in place: its one-shot figures are taken
        row.update({f"{k}, refitted": v for k, v in losses(fitness._whole(student, losses.parts), student).items()})
        row["sts refitted"] = sts_spearman(student, loaded.tokenizer, pairs)
        if args.retest:
            again = refitted(prune(loaded.model, config, database), refit_rows[1])
            row["sts retest"] = sts_spearman(again, loaded.tokenizer, pairs)
        rows.append(row)
        print(row, flush=True)
    df = pd.DataFrame(rows)
    summary = pd.DataFrame(
        [
            {
                "loss": name,
                "one-shot (as the search scores)": spearman(-df[f"{name}, one-shot"], df["sts refitted"]),
                "after the refit": spearman(-df[f"{name}, refitted"], df["sts refitted"]),
                "one-shot, with STS-B before the refit": spearman(-df[f"{name}, one-shot"], df["sts pruned"]),
            }
            for name in LOSSES
        ]
    )
    assert np.allclose(df["fitness"], df["pooled cosine, one-shot"], atol=1e-4), "the losses are not the search's"
    retest = (
        f"STS-B dev after the refit against STS-B dev after a second refit on a further {args.refit_tokens:,} tokens "
        f"(test-retest): Spearman **{spearman(df['sts refitted'], df['sts retest']):.3f}**."
        if args.retest
        else ""
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out.with_suffix(".csv"), index=False)
    md = [
        "# Fitness against STS-B dev",
        "",
        f"Command: `.venv/bin/python benchmarks/fitness_quality.py {' '.join(sys.argv[1:])}`; {dt.date.today()}. "
        f"{len(df)} random MiniLM configs predicted at {args.speedup}x (within 1%) by {args.table.name} "
        f"({args.table.parent.name}); losses on {args.tokens:,} calibration tokens as the search scores (sentence "
        f"pair ranks: 512 held-out calibration sentences); refit on {args.refit_tokens:,} tokens of the recovery "
        f"text; STS-B dev Spearman before and after it. STS-B dev after the refit ranges "
        f"{df['sts refitted'].min():.4f}-{df['sts refitted'].max():.4f}.",
        "",
        "Spearman of each loss (negated) with STS-B dev after the refit:",
        "",
        summary.to_markdown(index=False, floatfmt=".3f"),
        "",
        "The search's fitness is 'pooled cosine, one-shot' (DistillationFitness computes the same value). " + retest,
        "",
        df.to_markdown(index=False, floatfmt=".4f"),
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
