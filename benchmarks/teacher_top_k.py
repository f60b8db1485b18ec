"""Decoder fitness: the teacher's top-k KL against the full-vocabulary KL on the same pruned models.

The search scores a decoder candidate by KL(dense ‖ pruned) over the dense model's TEACHER_TOP_K likeliest
tokens plus one bucket for the rest (search/fitness.py), because the full distribution of the calibration
tokens would not fit in memory at scale. Here both are computed for random configs of SmolLM2-135M on the
same calibration rows: their ratio, and whether they rank the configs alike (Spearman).

    .venv/bin/python benchmarks/teacher_top_k.py [--configs 10 --tokens 4096]

Writes reports/teacher_top_k.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from prunesearch import calibration_for, load_model
from prunesearch.prune import LevelDatabase, prune
from prunesearch.search._fitness import TEACHER_TOP_K, DistillationFitness
from prunesearch.space import adapter_for

ROOT = Path(__file__).resolve().parents[1]


@torch.no_grad()
def full_kl(teacher, student, parts) -> float:
    total = weight = 0.0
    for part in parts:
        t = torch.log_softmax(teacher(**part, use_cache=False).logits.float(), -1)
        s = torch.log_softmax(student(**part, use_cache=False).logits.float(), -1)
        kl = (t.exp() * (t - s)).sum(-1)
        total += float((kl * part["attention_mask"]).sum())
        weight += float(part["attention_mask"].sum())
    return total / weight


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--configs", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=4096)
    args = ap.parse_args()
    loaded = load_model(args.model)
    space = adapter_for(loaded.model).space(ffn_step=128)
    calibration = calibration_for(loaded)
    database = LevelDatabase.build(loaded, calibration, space=space)
    fitness = DistillationFitness(loaded.model, database, calibration.calib(args.tokens), is_decoder=True)
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(args.configs):
        genome = rng.integers(space.genome_upper // 2, space.genome_upper + 1)  # the speed-ups searches reach
        config = space.from_genome(genome)
        top_k = fitness(config, args.tokens)
        exact = full_kl(loaded.model, prune(loaded.model, config, database), fitness.parts)
        rows.append((top_k, exact, " ".join(f"{l.heads}/{l.ffn}" for l in config.layers[:4]) + " ..."))
    ratio = [a / b for a, b, _ in rows]
    rho = spearmanr([a for a, _, _ in rows], [b for _, b, _ in rows]).statistic
    lines = [
        "# Decoder fitness: top-k KL against full-vocabulary KL",
        "",
        f"Command: `.venv/bin/python benchmarks/teacher_top_k.py --configs {args.configs} --tokens {args.tokens}`; "
        f"{dt.date.today()}; model {args.model}, k = {TEACHER_TOP_K}, {args.tokens} calibration tokens, random "
        "configs with every block at half its levels or more.",
        "",
        f"top-k / full KL: median {np.median(ratio):.3f} (range {min(ratio):.3f}-{max(ratio):.3f}); "
        f"Spearman rank correlation **{rho:.3f}** over {len(rows)} configs.",
        "",
        "| top-k KL | full KL | ratio | config (first layers) |",
        "|--:|--:|--:|:--|",
        *(f"| {a:.4f} | {b:.4f} | {a / b:.3f} | {c} |" for a, b, c in rows),
        "",
    ]
    out = ROOT / "reports" / "teacher_top_k.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
