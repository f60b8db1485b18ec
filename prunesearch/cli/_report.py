"""``prunesearch report RUN [RUN ...]``: rebuild a run's report, overlaying several runs."""

from __future__ import annotations

from pathlib import Path

import typer

from prunesearch.cli._app import app, console
from prunesearch.errors import PruneSearchError


@app.command()
def report(
    runs: list[Path] = typer.Argument(..., help="run folders written by `prunesearch search`"),
    out: Path = typer.Option(None, "--out", help="output folder (default: the first run's folder)"),
    export: Path = typer.Option(
        None,
        "--export",
        help="with one run: a folder `prunesearch export` wrote from it, whose measured pick the report shows",
    ),
) -> None:
    """Write results.csv, pareto.csv, plots and index.html for one run or several overlaid."""
    from prunesearch._run import Run
    from prunesearch.report import build_report, report_run

    opened = [Run.open(run) for run in runs]
    if len(opened) == 1:
        console.print(f"report: {report_run(opened[0], out, export=export)}")
        return
    if export is not None:
        raise PruneSearchError("--export shows one run's pick; give one run with it")
    # one front over the objectives every run has, and the constraints every run shares
    shared = [
        o
        for o in opened[0].attrs.get("objectives", ("loss", "latency_ms"))
        if all(o in run.attrs.get("objectives", ("loss", "latency_ms")) for run in opened)
    ]
    constraints = [c for c in opened[0].constraints() if all(c in run.constraints() for run in opened)]
    index = build_report(
        {run.name: run.trials() for run in opened},
        out or runs[0],
        constraints=constraints,
        objectives=tuple(shared),
        title="prunesearch: " + ", ".join(run.name for run in opened),
    )
    console.print(f"report: {index}")
