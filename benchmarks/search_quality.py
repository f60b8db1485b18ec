"""Search quality: each algorithm against fair baselines at equal evaluations, quality measured where users are.

For every target speed-up, every algorithm runs with the same evaluation budget on the same level
database, and its best config within the target is pruned (Wanda + least squares), then distilled
towards the dense model with the spec's recovery budget, exactly as ``prunesearch export`` does.
The baselines get the same: uniform pruning (the largest uniform config within the target, filled
up to it) with the same database and the same recovery; random search with the same evaluations;
Torch-Pruning (global L2-magnitude FFN pruning, the smallest swept ratio whose measured speed-up
reaches the slowest searched config's; its head path fails with transformers 5) with the same
recovery. Every model's speed-up is measured side by side with the dense model, one window per
target. Quality is scored on held-out text of the calibration domain ("in-domain") and on
human-written text from another source ("out-of-domain", Debian's fortunes): MiniLM by the mean
cosine of sentence embeddings to the dense model, a decoder by perplexity (and KL to the dense model).

    .venv/bin/python benchmarks/search_quality.py                    # MiniLM 1.5x/2x/3x
    .venv/bin/python benchmarks/search_quality.py --spec searches/smollm2-decode.yaml --targets 1.5

Writes reports/search_quality.{csv,md} (MiniLM) or reports/search_quality_<spec name>.*.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from rich.console import Console

from prunesearch import Constraint, Reporter, load_spec, prepare
from prunesearch.export import recovered
from prunesearch.graph import vocab_of
from prunesearch.oracle import time_side_by_side
from prunesearch.prune import prune
from prunesearch.search import Budget, DistillationFitness, RunStore, SearchProblem, run_search, uniform_start

ROOT = Path(__file__).resolve().parents[1]
STS_DEV = ROOT.parent / "shared" / "data" / "stsb-en-dev.csv"
ALGORITHMS = ["evolution", "supernet", "policy_gradient", "nsga2", "random"]
DEMO_SPEC = ROOT / "searches" / "minilm-ort-cpu-2x.yaml"
BASELINES = ("uniform", "random", "torch_pruning_ffn")


def options(algorithm: str, tokens: int) -> dict:
    """Per algorithm, on the spec's final token budget; the evaluation budget is shared (SearchProblem)."""
    return {
        "evolution": {"generations": 30, "offspring": 12, "selection": [[tokens // 4, 3], [tokens, 1]]},
        "supernet": {"rounds": 3, "tokens": tokens},
        "policy_gradient": {"iterations": 30, "samples": 8, "tokens": tokens},
        "nsga2": {"tokens": tokens, "constrained": True},
        "random": {"samples": 10_000, "tokens": tokens},
    }[algorithm]


def torch_pruning_ffn(model, ratio: float):
    """Global magnitude FFN pruning with Torch-Pruning (a pruned deep copy)."""
    import torch_pruning as tp

    model = copy.deepcopy(model)
    example = {"input_ids": torch.randint(0, 1000, (1, 16)), "attention_mask": torch.ones(1, 16, dtype=torch.long)}
    roots = [layer.intermediate.dense for layer in model.encoder.layer]
    ignored = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and all(m is not r for r in roots)]
    tp.pruner.MetaPruner(
        model,
        example,
        importance=tp.importance.MagnitudeImportance(p=2),
        global_pruning=True,
        pruning_ratio=ratio,
        ignored_layers=ignored,
    ).step()
    return model


def flat(quality: dict, metric: str) -> dict[str, float]:
    """{"in-domain pruned": .., "in-domain recovered": .., "sts stsb-en-dev.csv recovered": ..}: each held-out
    set's headline metric (STS pairs: Spearman) at each stage."""
    return {
        f"{text} {stage}": scores[metric if metric in scores else next(iter(scores))]
        for text, stages in quality.items()
        for stage, scores in stages.items()
        if stage != "dense"
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", type=Path, default=DEMO_SPEC, help="model, calibration, table and recovery")
    ap.add_argument("--evaluations", type=int, default=200)
    ap.add_argument("--targets", type=float, nargs="+", default=None, help="speed-ups (default 1.5 2 3; decoders 1.5)")
    ap.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, default=["evolution", "supernet", "random"])
    ap.add_argument("--out-dir", type=Path, default=ROOT / "reports")
    ap.add_argument("--sts", type=Path, default=STS_DEV if STS_DEV.is_file() else None, help="encoders: STS pairs")
    args = ap.parse_args()
    torch.manual_seed(0)
    reporter = Reporter(Console(stderr=True))
    spec = load_spec(args.spec)
    started = time.monotonic()
    prepared = prepare(spec, reporter=reporter)
    loaded, space, oracle = prepared.loaded, prepared.space, prepared.oracle
    calibration, database = prepared.database(reporter=reporter)
    targets = args.targets or ([1.5] if loaded.is_decoder else [1.5, 2.0, 3.0])
    tokens = spec.calibration.tokens
    fitness = DistillationFitness(loaded.model, database, calibration.calib(tokens), is_decoder=loaded.is_decoder)
    importance = database.group_importance()
    c = oracle.conditions
    metric = "perplexity" if loaded.is_decoder else "cosine"
    rows, dense = [], None

    def speedups(models: dict) -> dict:
        """Each model's speed-up over the dense model, all timed beside it in one window."""
        measured = time_side_by_side(models, reference=loaded.model, workload=c, vocab=vocab_of(loaded.model))
        return {name: measured[name].speedup for name in models}

    with tempfile.TemporaryDirectory() as tmp:
        for target in targets:
            limits = [Constraint(objective="speedup", limit=target)]
            found = {}
            for name in ["uniform", *args.algorithms]:
                problem = SearchProblem(
                    space=space,
                    fitness=fitness,
                    budget=Budget(prepared.metrics, limits, margin=spec.target.margin),
                    store=RunStore.open(f"sqlite:///{tmp}/{name}-{target}.db", "bench", resume=False),
                    max_evaluations=args.evaluations,
                    unit_importance=importance,
                )
                t0 = time.monotonic()
                if name == "uniform":
                    config, evaluations = space.from_genome(uniform_start(problem)), 0
                else:
                    result = run_search(problem, name, options(name, tokens), seed=spec.seed)
                    config, evaluations = result.best, result.evaluations
                found[name] = (config, evaluations, round(time.monotonic() - t0, 1))
            models = {name: prune(loaded.model, config, database) for name, (config, _, _) in found.items() if config}
            measured = speedups(models)
            if not loaded.is_decoder:  # Torch-Pruning: the smallest swept ratio reaching the slowest searched config
                ratios = [0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
                swept = {f"tp-{int(r * 100)}": torch_pruning_ffn(loaded.model, r) for r in ratios}
                tp = speedups(swept)
                name = next((n for n in swept if tp[n] >= min(measured.values())), list(swept)[-1])
                models["torch_pruning_ffn"], measured["torch_pruning_ffn"] = swept[name], tp[name]
                widths = "/".join(str(layer.intermediate.dense.out_features) for layer in swept[name].encoder.layer)
                found["torch_pruning_ffn"] = (f"{name}: all heads, FFN {widths}", len(ratios), 0.0)
            for name, (config, evaluations, seconds) in found.items():
                row = {"target_speedup": target, "method": name, "evaluations": evaluations, "search_s": seconds}
                if name not in models:  # reported, not dropped: nothing within the target
                    rows.append({**row, "config": "no config within the target"})
                    continue
                quality, record = recovered(
                    loaded,
                    models[name],
                    calibration,
                    options=spec.recovery,
                    sts=None if loaded.is_decoder else args.sts,
                    reporter=reporter,
                )
                dense = {text: stages["dense"] for text, stages in quality.items()}
                rows.append(
                    {
                        **row,
                        "predicted_speedup": None if isinstance(config, str) else oracle.config_speedup(config),
                        "measured_speedup": measured[name],
                        **flat(quality, metric),
                        "recovery_s": record["seconds"] if record else 0.0,
                        "config": config if isinstance(config, str) else str(config),
                    }
                )
                reporter.line(str(rows[-1]))
            # after every target, so a long run stopped early keeps what it measured
            write(
                pd.DataFrame(rows),
                args,
                spec=spec,
                metric=metric,
                dense=dense,
                table=prepared.choice.describe(),
                minutes=(time.monotonic() - started) / 60,
            )


def summary(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per target: the best searched method against the baselines, on recovered out-of-domain quality."""
    better = (lambda s: s.idxmin()) if metric == "perplexity" else (lambda s: s.idxmax())  # noqa: E731
    key = "out-of-domain recovered"
    out = []
    for target, g in df.dropna(subset=[key]).groupby("target_speedup"):
        searched = g[~g.method.isin(BASELINES)]
        if searched.empty:
            continue
        best = searched.loc[better(searched[key])]
        sts = next((c for c in g.columns if c.startswith("sts ") and c.endswith(" recovered")), None)
        row = {
            "target_speedup": target,
            "best algorithm": best.method,
            "measured speed-up": best.measured_speedup,
            "in-domain": best["in-domain recovered"],
            "out-of-domain": best[key],
        }
        if sts:
            row["STS-B dev Spearman"] = best[sts]
        for name in BASELINES:
            base = g[g.method == name]
            if len(base):
                row[f"{name} (speed-up)"] = f"{base[key].iloc[0]:.4f} ({base.measured_speedup.iloc[0]:.2f}x)"
        out.append(row)
    return pd.DataFrame(out)


def write(df: pd.DataFrame, args, *, spec, metric: str, dense: dict, table: str, minutes: float) -> None:
    demo = args.spec.resolve() == DEMO_SPEC.resolve()
    stem = args.out_dir / ("search_quality" if demo else f"search_quality_{spec.name}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(stem.with_suffix(".csv"), index=False)
    dense_text = ", ".join(
        f"{text} {', '.join(f'{k} {v:.4g}' for k, v in s.items())}" for text, s in (dense or {}).items()
    )
    md = [
        f"# Search quality on {spec.model}",
        "",
        f"Command: `.venv/bin/python benchmarks/search_quality.py {' '.join(sys.argv[1:])}`; {minutes:.0f} minutes; "
        f"targets done: {', '.join(f'{t}x' for t in sorted(df.target_speedup.unique()))}; {args.evaluations} "
        "evaluations per algorithm.",
        f"Table {table}. Speed-ups are measured side by side with the dense model, one window per target.",
        "Every model is pruned with the level database, refitted layer by layer on its own inputs "
        f"({spec.recovery.reconstruction.budget(is_decoder=metric == 'perplexity'):,} tokens of the recovery text) "
        "and distilled towards the dense "
        f"model on {spec.recovery.tokens:,} tokens of it (early-stopped on held-back rows) before it is scored; "
        "STS-B dev Spearman where a pairs file is given (evaluation only).",
        f"Quality ({metric} to the dense model): in-domain = the calibration text's held-out part; out-of-domain = "
        "Debian's fortunes (human-written, never calibrated on). 'pruned' is before recovery, 'recovered' after.",
        f"Dense model on the same text: {dense_text}.",
        "",
        "Best searched config per target against the baselines (out-of-domain, recovered):",
        "",
        summary(df, metric).to_markdown(index=False, floatfmt=".4f"),
        "",
        "All rows:",
        "",
        df.to_markdown(index=False, floatfmt=".4f"),
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"wrote {stem}.csv/.md")


if __name__ == "__main__":
    main()
