"""Search quality: each algorithm vs uniform pruning and random search at equal evaluations.

For every predicted speed-up target, every algorithm runs with the same evaluation budget on the same
level database; the best in-budget config is then pruned, exported to ONNX, MEASURED with ONNX Runtime
under the table's conditions, and scored on held-out text: MiniLM by the mean cosine of mean-pooled
sentence embeddings to the dense model; a decoder (SmolLM2, decode-phase table) by held-out
perplexity and the KL divergence of its next-token distributions to the dense model's.

    .venv/bin/python benchmarks/search_quality.py --quick      # MiniLM 2x only, evolution/supernet/random, 40 evals
    .venv/bin/python benchmarks/search_quality.py              # MiniLM 1.5x/2x/3x, all algorithms, 200 evals
    .venv/bin/python benchmarks/search_quality.py --spec searches/smollm2-decode.yaml   # SmolLM2 decode 1.5x/2x

Baseline Torch-Pruning (MiniLM only): global L2-magnitude pruning of FFN channels (intermediate.dense
outputs and the matching output.dense inputs; its attention-head path fails with transformers 5), ratio
swept and the smallest ratio whose MEASURED latency is at or below the slowest searched config's kept.
Writes reports/search_quality{,_quick}.{csv,md,png} (MiniLM) or reports/search_quality_<spec name>.*.
"""

from __future__ import annotations

import argparse
import sys
import copy
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from prunesearch.oracle.profile import measure_model
from prunesearch.pipeline import build_database, prepare
from prunesearch.prune.apply import prune
from prunesearch.quality import embedding_cosine, embeddings, kl_to_dense, perplexity
from prunesearch.search import RunStore, SearchProblem, run_search
from prunesearch.search.fitness import DistillationFitness
from prunesearch.search.operators import uniform_genome
from prunesearch.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]

ALGORITHMS = ["evolution", "supernet", "policy_gradient", "nsga2", "random"]
DEMO_SPEC = ROOT / "searches" / "minilm-ort-cpu-2x.yaml"


def options(algorithm: str, tokens: int) -> dict:
    """Per algorithm, on the spec's final token budget; the evaluation budget is shared (SearchProblem)."""
    return {
        "evolution": {"generations": 30, "offspring": 12, "selection": [[tokens // 4, 3], [tokens, 1]]},
        "supernet": {"rounds": 3, "tokens": tokens},
        "policy_gradient": {"iterations": 30, "samples": 8, "tokens": tokens},
        "nsga2": {},
        "random": {"samples": 10_000, "tokens": tokens},
    }[algorithm]


class Quality:
    """Held-out scores of a pruned model against the dense one: the first is the headline metric."""

    def __init__(self, loaded, calibration) -> None:
        self.decoder = loaded.is_decoder
        if self.decoder:
            self.held = calibration.heldout(4096)
            with torch.no_grad():
                self.dense = loaded.model(**self.held, use_cache=False).logits.half()
        else:
            self.held = calibration.heldout_sentences(256)
            self.dense = embeddings(loaded.model, self.held)

    @property
    def metric(self) -> str:
        return "heldout_perplexity" if self.decoder else "heldout_cosine"

    @property
    def higher_is_better(self) -> bool:
        return not self.decoder

    def __call__(self, model) -> dict[str, float]:
        if self.decoder:
            return {"heldout_perplexity": perplexity(model, self.held), "kl_to_dense": kl_to_dense(model, self.dense, self.held)}
        return {"heldout_cosine": embedding_cosine(model, self.dense, self.held)}


def torch_pruning_ffn(model, ratio: float):
    """Global magnitude FFN pruning with Torch-Pruning (a pruned deep copy)."""
    import torch_pruning as tp

    model = copy.deepcopy(model)
    example = {"input_ids": torch.randint(0, 1000, (1, 16)), "attention_mask": torch.ones(1, 16, dtype=torch.long)}
    roots = [layer.intermediate.dense for layer in model.encoder.layer]
    ignored = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and all(m is not r for r in roots)]
    tp.pruner.MetaPruner(
        model, example, importance=tp.importance.MagnitudeImportance(p=2), global_pruning=True,
        pruning_ratio=ratio, ignored_layers=ignored,
    ).step()
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", type=Path, default=DEMO_SPEC, help="model, calibration and table (default: the MiniLM demo)")
    ap.add_argument("--quick", action="store_true", help="2x only, three algorithms, 40 evaluations")
    ap.add_argument("--evaluations", type=int, default=None)
    ap.add_argument("--targets", type=float, nargs="+", default=None,
                    help="predicted speed-ups (default 1.5 2 3; decoders 1.5 2)")
    ap.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, default=None)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "reports")
    args = ap.parse_args()
    torch.manual_seed(0)
    spec = load_spec(args.spec)
    algorithms = args.algorithms or (["evolution", "supernet", "random"] if args.quick else ALGORITHMS)
    evaluations = args.evaluations or (40 if args.quick else 200)

    t0 = time.monotonic()
    loaded, adapter, space, table_path, predictor, _ = prepare(spec)
    calibration, database = build_database(spec, loaded, space)
    setup_s = time.monotonic() - t0
    targets = args.targets or ([2.0] if args.quick else [1.5, 2.0] if loaded.is_decoder else [1.5, 2.0, 3.0])
    tokens = spec.calibration.tokens
    fitness = DistillationFitness(loaded.model, database, calibration.calib(tokens), is_decoder=adapter.is_decoder)
    importance = database.group_importance()
    quality = Quality(loaded, calibration)
    dense_scores = quality(loaded.model)
    c = predictor.table.conditions

    def measured_ms(model, work: Path) -> float:
        return measure_model(model, conditions=c, workdir=work).latency_ms

    def score(method: str, speedup: float, model, *, n_eval: int, seconds: float, predicted, config: str) -> None:
        rows.append({
            "target_speedup": speedup, "method": method, "evaluations": n_eval, "search_s": round(seconds, 1),
            "predicted_ms": predicted, "measured_ms": measured_ms(model, work), "dense_measured_ms": dense_ms,
            **quality(model), "config": config,
        })
        print(rows[-1], flush=True)

    ratios = [0.5, 0.8, 0.95] if args.quick else [0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
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
                    params=adapter.param_count, max_evaluations=evaluations, unit_importance=importance,
                )
                start = time.monotonic()
                if name == "uniform":
                    genome = uniform_genome(problem)
                    config, n_eval = space.from_genome(genome), 1
                else:
                    result = run_search(problem, name, options(name, tokens), seed=spec.seed)
                    config, n_eval = result.best, result.evaluations
                runs[name] = (config, n_eval, time.monotonic() - start)
            for name, (config, n_eval, seconds) in runs.items():
                if config is None:  # reported, not dropped: the algorithm found nothing within the budget
                    rows.append({"target_speedup": speedup, "method": name, "evaluations": n_eval,
                                 "search_s": round(seconds, 1), "dense_measured_ms": dense_ms,
                                 "config": "no config within the budget"})
                    continue
                score(name, speedup, prune(loaded.model, config, database), n_eval=n_eval, seconds=seconds,
                      predicted=float(predictor.config_latency_ms(config)),
                      config=",".join(f"{l.heads}/{l.ffn}" for l in config.layers))
            if not loaded.is_decoder:
                reference = max(r.get("measured_ms", 0.0) for r in rows if r["target_speedup"] == speedup)
                for ratio in ratios:  # smallest ratio reaching the searched configs' measured latency
                    model = torch_pruning_ffn(loaded.model, ratio)
                    ms = measured_ms(model, work)
                    if ms <= reference or ratio == ratios[-1]:
                        widths = "/".join(str(l.intermediate.dense.out_features) for l in model.encoder.layer)
                        score("torch_pruning_ffn", speedup, model, n_eval=len(ratios), seconds=0.0, predicted=float("nan"),
                              config=f"ratio {ratio}: all heads, FFN {widths}" + ("" if ms <= reference else " (target not reached)"))
                        break
            # after every target, so a long run stopped early keeps what it measured
            write(pd.DataFrame(rows), args, spec=spec, quality=quality, dense_scores=dense_scores, setup_s=setup_s,
                  table=table_path, evaluations=evaluations)


def summary(df: pd.DataFrame, quality: Quality) -> pd.DataFrame:
    """Per target: the best searched method's score and measured speed-up beside the baselines'."""
    metric = quality.metric
    out = []
    for speedup, g in df.groupby("target_speedup"):
        searched = g[~g.method.isin(["uniform", "torch_pruning_ffn", "random"])]
        best = searched.loc[searched[metric].idxmax() if quality.higher_is_better else searched[metric].idxmin()]
        row = {"target_speedup": speedup, "best algorithm": best.method, metric: best[metric],
               "measured_speedup": best.measured_speedup}
        for name in ("random", "uniform", "torch_pruning_ffn"):
            base = g[g.method == name]
            if len(base):
                row[f"{name} {metric.removeprefix('heldout_')}"] = base[metric].iloc[0]
                row[f"{name} speedup"] = base.measured_speedup.iloc[0]
        out.append(row)
    return pd.DataFrame(out)


def write(
    df: pd.DataFrame, args, *, spec, quality: Quality, dense_scores: dict[str, float], setup_s: float, table: Path,
    evaluations: int,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prunesearch.oracle import LatencyTable

    c = LatencyTable.load(table).conditions
    demo = args.spec.resolve() == DEMO_SPEC.resolve()
    stem = args.out_dir / (("search_quality_quick" if args.quick else "search_quality") if demo else f"search_quality_{spec.name}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    df["measured_speedup"] = df["dense_measured_ms"] / df["measured_ms"]
    df.to_csv(stem.with_suffix(".csv"), index=False)
    metric = quality.metric
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, g in df.groupby("method"):
        ax.scatter(g["measured_speedup"], g[metric], label=name)
    ax.set_xlabel(f"measured speed-up over dense (ORT CPU, {c.phase})")
    ax.set_ylabel("held-out perplexity (lower is better)" if quality.decoder else "held-out mean cosine to dense")
    if quality.decoder:
        ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=120)
    cols = ["target_speedup", "method", "evaluations", "search_s", "predicted_ms", "measured_ms", "measured_speedup",
            *[k for k in ("heldout_cosine", "heldout_perplexity", "kl_to_dense") if k in df]]
    cached = f", {c.cache_len} cached tokens" if c.phase == "decode" else ""
    md = [
        f"# Search quality on {spec.model} ({'quick' if args.quick else 'full'} mode)",
        "",
        f"Command: `.venv/bin/python benchmarks/search_quality.py {' '.join(sys.argv[1:])}`; targets done: "
        f"{', '.join(f'{t}x' for t in sorted(df.target_speedup.unique()))}.",
        f"Table {table}; level database + model setup {setup_s:.0f} s; evaluation budget {evaluations} per algorithm.",
        f"Measured latencies are ONNX Runtime CPU on {c.device}, {c.threads} thread(s), batch {c.batch}, {c.phase} of "
        f"{c.seq_len} token(s){cached} (median of the quietest of 5 rounds).",
        "Measured speed-ups differ between methods, so compare quality together with measured speed-up (plot).",
        f"Dense model on the same held-out text: {', '.join(f'{k} {v:.4f}' for k, v in dense_scores.items())}.",
        "",
        f"Best searched config per target against the baselines ({metric}):",
        "",
        summary(df, quality).to_markdown(index=False, floatfmt=".4f"),
        "",
        "All rows:",
        "",
        df[cols].to_markdown(index=False, floatfmt=".4f"),
        "",
    ]
    if not quality.decoder:
        md += [
            "torch_pruning_ffn: Torch-Pruning global magnitude pruning of FFN channels only (heads kept: its head path",
            "fails with transformers 5); the smallest swept ratio whose measured latency is at or below the slowest",
            "searched config's; 'target not reached' in its config column means FFN pruning alone could not get there.",
            "",
        ]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"wrote {stem}.csv/.md/.png")


if __name__ == "__main__":
    main()
