"""Search and export memory: peak resident memory of a whole search process (and seconds per evaluation) and,
with ``--export``, of a whole export of its pick with recovery.

Runs `prunesearch search` on a spec (default: the shipped SmolLM2-135M decode search) in fresh child
processes at two evaluation budgets; seconds per evaluation is the difference of their wall times over
the difference of their budgets, so loading the model, the table and the level database cancels out.
Peak memory is each command's or its largest child's (the timing child's) ru_maxrss, and the largest sum of
both at once. With ``--vs CHECKOUT`` the same runs alternate with another
checkout of prunesearch (before/after a change), A B A B, so both are timed in the same window.
The table and the level database are made once first (a warm-up run), as a search finds them cached.
With ``--export``, the warm-up run's pick is exported (`prunesearch export --run RUN --pick best --to hf,onnx`,
reconstruction and recovery as its spec says) in a fresh process per round, and its peak memory recorded.

    .venv/bin/python benchmarks/search_memory.py                          # this checkout
    .venv/bin/python benchmarks/search_memory.py --budgets 6 30 --export  # and an export with recovery
    .venv/bin/python benchmarks/search_memory.py --vs /path/to/old/checkout --label-vs before --table T.csv

Writes reports/search_memory.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from children import Timed, timed  # noqa: E402

#: the child: prunesearch's CLI, run from a checkout (``python -c`` puts the working folder first on the path)
CHILD = "import sys\nfrom prunesearch.cli import main\nsys.argv = ['prunesearch', *sys.argv[1:]]\nmain()\n"


def spec_with_budget(spec: Path, evaluations: int, folder: Path, *, table: Path | None) -> Path:
    data = yaml.safe_load(spec.read_text())
    data["budget"] = {**data.get("budget", {}), "evaluations": evaluations}
    if table is not None:  # a given table: no check of a stored one, which could re-profile in one run only
        data["device"] = {**data.get("device", {}), "table": str(table.resolve())}
    data["name"] = f"{data['name']}-{evaluations}"
    out = folder / f"{data['name']}.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


def run_search(checkout: Path, spec: Path, runs: Path) -> Timed:
    """One search in a fresh process running ``checkout``'s code."""
    return run_cli(checkout, ["search", str(spec), "--runs", str(runs)], log=runs.parent / f"{runs.name}.log")


def run_cli(checkout: Path, argv: list[str], *, log: Path) -> Timed:
    """One prunesearch command in a fresh process running ``checkout``'s code: its wall seconds, the peak of it or
    its largest child (the timing child) and of both at once."""
    log.parent.mkdir(parents=True, exist_ok=True)
    ran = timed(
        [sys.executable, "-c", CHILD, *argv], cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)}, log=log
    )
    if ran.returncode:
        raise SystemExit(f"{argv[0]} failed ({checkout}), exit {ran.returncode}; its output: {log}")
    return ran


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", type=Path, default=ROOT / "searches" / "smollm2-decode.yaml")
    ap.add_argument("--budgets", type=int, nargs=2, default=[6, 36], help="the two evaluation budgets")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--table", type=Path, help="search against this table (default: the spec's device.table)")
    ap.add_argument("--vs", type=Path, help="another checkout to alternate with")
    ap.add_argument("--export", action="store_true", help="also measure an export of the pick, with recovery")
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--label-vs", default="other checkout")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "search_memory.md")
    args = ap.parse_args()
    checkouts = {args.label: ROOT} | ({args.label_vs: args.vs.resolve()} if args.vs else {})
    rows: dict[str, list[dict]] = {label: [] for label in checkouts}
    with tempfile.TemporaryDirectory(prefix="search-memory-") as tmp:
        folder = Path(tmp)
        small, large = (spec_with_budget(args.spec, n, folder, table=args.table) for n in args.budgets)
        for label, checkout in checkouts.items():  # warm-up: tables and level databases cached
            print(f"warm-up: {label}", flush=True)
            run_search(checkout, small, folder / "warm-up" / label)
        for r in range(args.rounds):
            for label, checkout in checkouts.items():
                smaller = run_search(checkout, small, folder / f"{label}-{r}-small")
                larger = run_search(checkout, large, folder / f"{label}-{r}-large")
                row = {
                    "s_per_eval": (larger.seconds - smaller.seconds) / (args.budgets[1] - args.budgets[0]),
                    "peak_small_mb": smaller.peak_mb,
                    "peak_mb": larger.peak_mb,
                    "tree_peak_mb": larger.tree_peak_mb,
                    "wall_large_s": larger.seconds,
                }
                if args.export:
                    run_dir = folder / "warm-up" / label / small.stem  # --runs RUNS writes RUNS/<spec name>
                    out = folder / f"x{r}"
                    argv = ["export", "--run", str(run_dir), "--pick", "best", "--to", "hf,onnx", "--out", str(out)]
                    exported = run_cli(checkout, argv, log=folder / f"x{r}.log")
                    row["export_s"], row["export_peak_mb"] = exported.seconds, exported.peak_mb
                    row["export_tree_peak_mb"] = exported.tree_peak_mb
                rows[label].append(row)
                print(f"round {r + 1}: {label}: {row}", flush=True)
    write(args, rows)


def write(args, rows: dict[str, list[dict]]) -> None:
    from prunesearch import load_model

    spec = yaml.safe_load(args.spec.read_text())
    loaded = load_model(spec["model"])
    model_mb = sum(p.numel() * p.element_size() for p in loaded.model.parameters()) / 2**20
    lines = [
        "# Search memory and seconds per evaluation",
        "",
        f"Command: `.venv/bin/python benchmarks/search_memory.py {' '.join(sys.argv[1:])}`; {dt.date.today()}.",
        f"Spec {args.spec.name} (model {spec['model']}, {model_mb:.0f} MB of fp32 parameters), budgets "
        f"{args.budgets[0]} and {args.budgets[1]} evaluations, each search a fresh process with the table and "
        "level database cached; seconds per evaluation = difference of wall times / difference of budgets.",
        "",
        "Peak RSS is the search process's or its timing child's, whichever is larger; \"at once\" sums both.",
        "",
        "| code | round | peak RSS, smaller / larger budget (MB) | x fp32 model (larger) | at once, larger (MB) "
        "| s / evaluation | wall, larger budget (s) |",
        "|:--|--:|--:|--:|--:|--:|--:|",
    ]
    for label, runs in rows.items():
        for r, row in enumerate(runs):
            lines.append(
                f"| {label} | {r + 1} | {row['peak_small_mb']:.0f} / {row['peak_mb']:.0f} | "
                f"{row['peak_mb'] / model_mb:.2f} | {row['tree_peak_mb'] or 'n/a'} | "
                f"{row['s_per_eval']:.2f} | {row['wall_large_s']:.0f} |"
            )
    if args.export:
        lines += [
            "",
            "Export of the smaller budget's pick (`export --pick best --to hf,onnx`, the spec's reconstruction and "
            "recovery), a fresh process:",
            "",
            "| code | round | peak RSS (MB) | x fp32 model | at once (MB) | wall (s) |",
            "|:--|--:|--:|--:|--:|--:|",
            *(
                f"| {label} | {r + 1} | {row['export_peak_mb']:.0f} | {row['export_peak_mb'] / model_mb:.2f} | "
                f"{row['export_tree_peak_mb'] or 'n/a'} | {row['export_s']:.0f} |"
                for label, runs in rows.items()
                for r, row in enumerate(runs)
            ),
        ]
    if len(rows) == 2:
        (a, ra), (b, rb) = rows.items()
        ratio = statistics.median(x["s_per_eval"] / y["s_per_eval"] for x, y in zip(ra, rb))
        lines += ["", f"Median over rounds of s/evaluation {a} / {b}: **{ratio:.2f}** (same window, alternated)."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
