"""``prunesearch report RUN [RUN ...]``: rebuild a run's report, overlaying several runs."""

from __future__ import annotations

from pathlib import Path

import typer

from prunesearch.cli.app import app, console
from prunesearch.errors import PruneSearchError


@app.command()
def report(
    runs: list[Path] = typer.Argument(..., help="run folders written by `prunesearch search`"),
    out: Path = typer.Option(None, "--out", help="output folder (default: the first run's folder)"),
    export: Path = typer.Option(None, "--export", help="with one run: a folder `prunesearch export` wrote from it, "
                                "whose measured pick the report shows"),
) -> None:
    """Write results.csv, pareto.csv, plots and index.html for one run or several overlaid."""
    from prunesearch.report import build_report, report_run
    from prunesearch.run import Run

    opened = [Run.open(run) for run in runs]
    if len(opened) == 1:
        console.print(f"report: {report_run(opened[0], out, export=export)}")
        return
    if export is not None:
        raise PruneSearchError("--export shows one run's pick; give one run with it")
    targets = {run.attrs.get("target_ms") for run in opened}
    index = build_report({run.name: run.trials() for run in opened}, out or runs[0],
                         target_ms=targets.pop() if len(targets) == 1 else None,
                         title="prunesearch: " + ", ".join(run.name for run in opened))
    console.print(f"report: {index}")
