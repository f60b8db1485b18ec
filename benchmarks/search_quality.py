"""Search quality on MiniLM: each algorithm vs uniform pruning and random search at equal evaluations.

For every predicted speed-up target, every algorithm runs with the same evaluation budget on the same
level database; the best in-budget config is then pruned, exported to ONNX, MEASURED with ONNX Runtime,
and scored on held-out sentences (mean cosine of mean-pooled embeddings to the dense model).

    .venv/bin/python benchmarks/search_quality.py --quick      # 2x only, evolution/supernet/random, 40 evals
    .venv/bin/python benchmarks/search_quality.py              # 1.5x/2x/3x, all algorithms, 200 evals

Writes reports/search_quality{,_quick}.{csv,md,png}. Not yet covered: the Torch-Pruning baseline and the
SmolLM2 decode variant (see the report's notes).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from prunesearch.oracle.measure import measure_onnx
from prunesearch.pipeline import build_database, prepare
from prunesearch.prune.apply import prune
from prunesearch.quality import embedding_cosine, embeddings
from prunesearch.search import RunStore, SearchProblem, run_search
from prunesearch.search.fitness import DistillationFitness
from prunesearch.search.operators import uniform_start
from prunesearch.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]

OPTIONS = {  # per algorithm; the evaluation budget is shared and enforced by SearchProblem
    "evolution": {"generations": 30, "offspring": 12, "selection": [[2048, 3], [8192, 1]]},
    "supernet": {"rounds": 3, "tokens": 8192},
    "policy_gradient": {"iterations": 30, "samples": 8, "tokens": 8192},
    "nsga2": {},
    "random": {"samples": 10_000, "tokens": 8192},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2x only, three algorithms, 40 evaluations")
    ap.add_argument("--evaluations", type=int, default=None)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "reports")
    args = ap.parse_args()
    torch.manual_seed(0)
    spec = load_spec(ROOT / "searches" / "minilm-ort-cpu-2x.yaml")
    targets = [2.0] if args.quick else [1.5, 2.0, 3.0]
    algorithms = ["evolution", "supernet", "random"] if args.quick else list(OPTIONS)
    evaluations = args.evaluations or (40 if args.quick else 200)

    t0 = time.monotonic()
    loaded, adapter, space, table_path, predictor, _ = prepare(spec)
    calibration, database = build_database(spec, loaded, space)
    setup_s = time.monotonic() - t0
    fitness = DistillationFitness(loaded.model, database, calibration.calib(spec.calibration.tokens), is_decoder=False)
    held = calibration.heldout_sentences(256)
    dense_emb = embeddings(loaded.model, held)
    vocab = loaded.model.config.vocab_size
    d = spec.device

    def measured_ms(model, work: Path) -> float:
        from prunesearch.export.onnx import export_onnx

        path = export_onnx(model, work / "m.onnx", batch=d.batch, seq_len=d.seq_len)
        return measure_onnx(path, batch=d.batch, seq_len=d.seq_len, threads=d.threads, vocab=vocab).median_ms

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dense_ms = measured_ms(loaded.model, work)
        for speedup in targets:
            target_ms = predictor.dense_ms / speedup * (1 - spec.target.margin)
            runs = {}
            for name in ["uniform", *algorithms]:
                store = RunStore.open(f"sqlite:///{work}/{name}-{speedup}.db", "bench", resume=False, attrs={})
                problem = SearchProblem(
                    space=space, fitness=fitness, predictor=predictor, target_ms=target_ms, store=store,
                    params=adapter.param_count, max_evaluations=evaluations,
                )
                start = time.monotonic()
                if name == "uniform":
                    genome = uniform_start(problem)
                    config, n_eval = space.from_genome(genome), 1
                else:
                    result = run_search(problem, name, OPTIONS[name], seed=spec.seed)
                    config, n_eval = result.best, result.evaluations
                runs[name] = (config, n_eval, time.monotonic() - start)
            for name, (config, n_eval, seconds) in runs.items():
                pruned = prune(loaded.model, config, database)
                rows.append({
                    "target_speedup": speedup, "method": name, "evaluations": n_eval, "search_s": round(seconds, 1),
                    "predicted_ms": float(predictor.config_latency_ms(config)),
                    "measured_ms": measured_ms(pruned, work), "dense_measured_ms": dense_ms,
                    "heldout_cosine": embedding_cosine(pruned, dense_emb, held),
                    "config": ",".join(f"{l.heads}/{l.ffn}" for l in config.layers),
                })
                print(rows[-1], flush=True)
    write(pd.DataFrame(rows), args, setup_s=setup_s, table=table_path, evaluations=evaluations)


def write(df: pd.DataFrame, args, *, setup_s: float, table: Path, evaluations: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = args.out_dir / ("search_quality_quick" if args.quick else "search_quality")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    df["measured_speedup"] = df["dense_measured_ms"] / df["measured_ms"]
    df.to_csv(stem.with_suffix(".csv"), index=False)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, g in df.groupby("method"):
        ax.scatter(g["measured_speedup"], g["heldout_cosine"], label=name)
    ax.set_xlabel("measured speed-up over dense (ORT CPU)")
    ax.set_ylabel("held-out mean cosine to dense")
    ax.legend()
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=120)
    cols = ["target_speedup", "method", "evaluations", "search_s", "predicted_ms", "measured_ms", "measured_speedup", "heldout_cosine"]
    md = [
        f"# Search quality on MiniLM ({'quick' if args.quick else 'full'} mode)",
        "",
        f"Table {table}; level database + model setup {setup_s:.0f} s; evaluation budget {evaluations} per algorithm.",
        "Latencies are single medians on a shared, noisy 2-core machine. Measured speed-ups differ between methods, so",
        "compare cosine together with measured speed-up (plot), not cosine alone.",
        "",
        df[cols].to_markdown(index=False, floatfmt=".4f"),
        "",
        "Not covered yet: Torch-Pruning global magnitude baseline; SmolLM2 decode-table variant.",
    ]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"wrote {stem}.csv/.md/.png")


if __name__ == "__main__":
    main()
