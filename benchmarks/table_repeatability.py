"""Table repeatability: two profiles of the same machine, at least --gap-minutes apart, compared row by row.

    .venv/bin/python benchmarks/table_repeatability.py                    # profile A now, into reports/
    .venv/bin/python benchmarks/table_repeatability.py --against A.csv    # later: profile B, compare with A

A row agrees when the two profiles' costs differ by at most 2 standard errors of the difference
(sqrt(se_A^2 + se_B^2), each table's stated uncertainty). Beside the rows, the benchmark compares
what matters to a search: the two tables' predicted speed-ups of 2,000 random configs and of
uniform ones. Writes reports/table_repeatability.{md,csv}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

import prunesearch as ps
from prunesearch import Reporter, Workload
from prunesearch.oracle import Conditions, LatencyTable, Predictor, profile_table

REPORTS = Path(__file__).resolve().parents[1] / "reports"


def compare(a: LatencyTable, b: LatencyTable, space) -> tuple[pd.DataFrame, dict]:
    rows = a.rows.merge(b.rows, on=["kind", "size"], suffixes=("_a", "_b"))
    rows["diff_pct"] = (rows.cost_b / rows.cost_a - 1) * 100
    rows["z"] = (rows.cost_b - rows.cost_a) / np.hypot(rows.se_a, rows.se_b)
    rows["agrees"] = rows.z.abs() <= 2
    rng = np.random.default_rng(0)
    genomes = rng.integers(0, space.genome_upper + 1, size=(2000, len(space.genome_upper)))
    sa, sb = Predictor(a, space).speedup(genomes), Predictor(b, space).speedup(genomes)
    diff = np.abs(sb / sa - 1)
    uniform = {
        f"{h}/{w}": (
            Predictor(a, space).config_ratio(space.uniform_config(heads=h, ffn=w)),
            Predictor(b, space).config_ratio(space.uniform_config(heads=h, ffn=w)),
        )
        for h, w in ((9, 1152), (7, 896), (6, 640), (4, 512))
    }
    started = [dt.datetime.fromisoformat(t.meta.profiled_at) for t in (a, b)]
    summary = {
        "minutes apart": round((started[1] - started[0]).total_seconds() / 60, 1),
        "rows within 2 se": f"{int(rows.agrees.sum())} of {len(rows)}",
        "largest |z|": round(float(rows.z.abs().max()), 2),
        "largest row difference": f"{rows.diff_pct.abs().max():.1f}%",
        "random configs: median speed-up difference": f"{np.median(diff):.2%}",
        "random configs: 95th percentile": f"{np.percentile(diff, 95):.2%}",
        "random configs: max": f"{diff.max():.2%}",
        **{f"uniform {k}: speed-up A / B": f"{1 / ra:.3f} / {1 / rb:.3f}" for k, (ra, rb) in uniform.items()},
        "dense ms A / B (p10-p90 while profiling)": " / ".join(
            f"{t.meta.dense_ms:.2f} ({t.meta.dense_p10_ms:.2f}-{t.meta.dense_p90_ms:.2f})" for t in (a, b)
        ),
    }
    return rows, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--against", type=Path, help="profile A's table: profile B now and compare")
    parser.add_argument("--gap-minutes", type=float, default=30.0, help="least time between A and B")
    args = parser.parse_args()
    loaded = ps.load_model(args.model)
    space = ps.adapter_for(loaded.model).space()
    if args.against is not None:
        a = LatencyTable.load(args.against)
        waited = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(a.meta.profiled_at)).total_seconds() / 60
        if waited < args.gap_minutes:
            sys.exit(f"profile A is {waited:.0f} minutes old; profile B waits for {args.gap_minutes:g}")
    conditions = Conditions.here(loaded, Workload(threads=args.threads), ffn_step=128)
    table = profile_table(loaded, conditions, reporter=Reporter(Console(stderr=True)))
    name = "a" if args.against is None else "b"
    path = table.save(REPORTS / f"table_repeatability_{name}.csv")
    print(f"profile {name.upper()}: {path}")
    if args.against is None:
        return
    rows, summary = compare(a, table, space)
    rows.to_csv(REPORTS / "table_repeatability.csv", index=False)
    shown = ["kind", "size", "cost_a", "se_a", "cost_b", "se_b", "diff_pct", "z", "agrees"]
    text = "\n".join(
        [
            f"# Table repeatability: {args.model}, ONNX Runtime CPU, {args.threads} thread(s)",
            "",
            f"Profile A: {args.against} (profiled {a.meta.profiled_at}); profile B: "
            f"`.venv/bin/python benchmarks/table_repeatability.py --against {args.against}` "
            f"(profiled {table.meta.profiled_at}); CPU: {table.conditions.device}.",
            "Costs are fractions of the dense model's time, measured side by side with it; a row agrees when the",
            "profiles differ by at most 2 standard errors of the difference (each table's stated uncertainty).",
            "",
            pd.Series(summary).to_frame("value").to_markdown(),
            "",
            rows[shown].to_markdown(index=False, floatfmt=".4g"),
            "",
        ]
    )
    (REPORTS / "table_repeatability.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
