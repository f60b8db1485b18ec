"""Seconds per search evaluation: the fitness of fixed configs, this checkout against another, alternated.

A search's wall time per evaluation also holds its measurement windows (whole models timed beside the dense one,
every ``measure.every`` evaluations), which an older checkout may not run at all. This times the evaluation
itself: the search's DistillationFitness on a spec's model and calibration (default: the shipped SmolLM2-135M
decode search), scoring six uniform configs at each of the token budgets the spec's selection uses, in a fresh
process per checkout and round (A B A B), with the heap handling that checkout's CLI runs a search under. The
summed losses are printed too: equal losses mean both checkouts did the same work.

    .venv/bin/python benchmarks/fitness_speed.py --vs /path/to/old/checkout --rounds 3

Writes reports/fitness_speed.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from children import child_result  # noqa: E402

#: the configs scored (valid on SmolLM2's grid in every checkout: GQA groups of 3 heads, FFN steps of 128)
CONFIGS = [(6, 1024), (9, 768), (3, 1536), (6, 512), (9, 1280), (3, 896)]

#: the child: one checkout's fitness, timed; its result as JSON on stdout's last line
CHILD = """
import contextlib, json, sys, time
try:
    from prunesearch._models import load_model
    from prunesearch._pipeline import build_database
    from prunesearch._spec import load_spec
    from prunesearch.search._fitness import DistillationFitness
except ImportError:  # a checkout from before 67ea4b5, when these modules were public
    from prunesearch.models import load_model
    from prunesearch.pipeline import build_database
    from prunesearch.spec import load_spec
    from prunesearch.search.fitness import DistillationFitness
try:  # the heap as the checkout's CLI keeps it
    from prunesearch._heap import trimmed_heap
except ImportError:
    trimmed_heap = contextlib.nullcontext
from prunesearch.space import adapter_for

spec, configs, budgets = load_spec(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
loaded = load_model(spec.model)
space = adapter_for(loaded.model).space()
calibration, database = build_database(loaded, space, calibration=spec.calibration, seed=spec.seed)
configs = [space.uniform_config(heads=h, ffn=f) for h, f in configs]
result = {}
with trimmed_heap():
    rows, is_decoder = calibration.calib(spec.calibration.tokens), adapter_for(loaded.model).is_decoder
    fitness = DistillationFitness(loaded.model, database, rows, is_decoder=is_decoder)
    fitness(configs[0], min(budgets))  # first touches: the database's files, the dense model's pages
    for tokens in budgets:
        started = time.perf_counter()
        losses = [fitness(config, tokens) for config in configs]
        result[str(tokens)] = {"seconds": (time.perf_counter() - started) / len(configs), "losses": sum(losses)}
print(json.dumps(result))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", type=Path, default=ROOT / "searches" / "smollm2-decode.yaml")
    ap.add_argument("--budgets", type=int, nargs="+", default=[1024, 4096], help="token budgets scored on")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vs", type=Path, help="another checkout to alternate with")
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--label-vs", default="other checkout")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "fitness_speed.md")
    args = ap.parse_args()
    checkouts = {args.label: ROOT}
    if args.vs:
        checkouts[args.label_vs] = args.vs.resolve()
    rows = []
    for r in range(args.rounds):
        for label, checkout in checkouts.items():
            values = (str(args.spec.resolve()), json.dumps(CONFIGS), json.dumps(args.budgets))
            env = {**os.environ, "PYTHONPATH": str(checkout)}
            result = child_result(CHILD, *values, cwd=checkout, env=env, what=f"fitness ({checkout})")
            rows.append({"code": label, "round": r + 1, **result})
            print(rows[-1], flush=True)
    budgets = [str(b) for b in args.budgets]
    lines = [
        "# Seconds per search evaluation",
        "",
        f"Command: `.venv/bin/python benchmarks/fitness_speed.py {' '.join(sys.argv[1:])}`; {dt.date.today()}; "
        f"spec {args.spec.name}; the fitness of {len(CONFIGS)} uniform configs (heads, FFN: "
        f"{', '.join(f'{h}/{f}' for h, f in CONFIGS)}) at each budget, each run a fresh process, alternated.",
        "",
        "| code | round | " + " | ".join(f"s / evaluation, {b} tokens | summed loss, {b}" for b in budgets) + " |",
        "|:--|--:|" + "--:|--:|" * len(budgets),
        *(
            f"| {x['code']} | {x['round']} | "
            + " | ".join(f"{x[b]['seconds']:.2f} | {x[b]['losses']:.5f}" for b in budgets)
            + " |"
            for x in rows
        ),
        "",
    ]
    if args.vs:
        for b in budgets:
            mine = [x[b]["seconds"] for x in rows if x["code"] == args.label]
            theirs = [x[b]["seconds"] for x in rows if x["code"] == args.label_vs]
            ratios = [m / t for m, t in zip(mine, theirs)]
            lines.append(
                f"- {b} tokens: seconds per evaluation {args.label} / {args.label_vs}, median of the rounds' ratios "
                f"**{statistics.median(ratios):.2f}** ({', '.join(f'{x:.2f}' for x in ratios)})."
            )
        lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
