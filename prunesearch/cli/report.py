"""``prunesearch report RUN [RUN ...]``: rebuild a run's report, overlaying several runs."""

from __future__ import annotations

from pathlib import Path

import typer

from prunesearch.cli.app import app, console
from prunesearch.errors import PruneSearchError


def open_run(run: Path) -> tuple[str, str, dict]:
    """(storage URL, study name, study attributes) of a run folder."""
    from prunesearch.search import study_attrs
    from prunesearch.spec import load_spec

    spec_file = run / "spec.yaml"
    if not spec_file.is_file():
        raise PruneSearchError(f"{run} is not a run folder (no spec.yaml); pass the folder a search wrote")
    spec = load_spec(spec_file)
    storage = spec.storage_url(run)
    try:
        return storage, spec.name, study_attrs(storage, spec.name)
    except KeyError:  # optuna: no study of that name in the storage (the search stopped before its first evaluation)
        raise PruneSearchError(
            f"{run} holds no stored search {spec.name!r}; run `prunesearch search {spec_file}` first"
        ) from None


@app.command()
def report(
    runs: list[Path] = typer.Argument(..., help="run folders written by `prunesearch search`"),
    out: Path = typer.Option(None, "--out", help="output folder (default: the first run's folder)"),
) -> None:
    """Write results.csv, pareto.csv, plots and index.html for one run or several overlaid."""
    from prunesearch.report import build_report
    from prunesearch.search import load_trials

    frames, targets = {}, set()
    for run in runs:
        storage, name, attrs = open_run(run)
        frames[name] = load_trials(storage, name)
        targets.add(attrs.get("target_ms"))
    target = targets.pop() if len(targets) == 1 else None
    index = build_report(frames, out or runs[0], target_ms=target, title="prunesearch: " + ", ".join(frames))
    console.print(f"report: {index}")
