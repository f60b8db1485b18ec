"""``prunesearch search SPEC``: run a search spec, store every evaluation, write the report."""

from __future__ import annotations

from pathlib import Path

import typer

from prunesearch._objectives import OBJECTIVES
from prunesearch.cli._app import app, console, reporter


@app.command()
def search(
    spec: Path = typer.Argument(..., help="search spec YAML (see searches/)"),
    runs: Path = typer.Option(Path("runs"), "--runs", help="folder that holds one sub-folder per run"),
    resume: bool = typer.Option(False, "--resume", help="continue a stopped run; stored evaluations are not redone"),
    executor: str = typer.Option(None, "--executor", help="override the spec's executor.kind: serial, local or ray"),
    workers: int = typer.Option(None, "--workers", min=1, help="override the spec's executor.workers"),
    force: bool = typer.Option(
        False,
        "--force",
        help="use the spec's table even where it was measured under other "
        "conditions (another CPU, threads, shapes) than the search asks for",
    ),
) -> None:
    """Search SPEC's space for the configs that keep the most quality within its budget."""
    from prunesearch._pipeline import run_spec
    from prunesearch._spec import load_spec
    from prunesearch.report import report_run

    parsed = load_spec(spec)
    if executor is not None or workers is not None:
        parsed = parsed.with_executor(kind=executor, workers=workers)
    if force:
        parsed = parsed.model_copy(update={"device": parsed.device.model_copy(update={"force": True})})
    outcome = run_spec(parsed, run_dir=runs / parsed.name, resume=resume, reporter=reporter)
    if outcome.best is None:
        console.print("no evaluated config met the target; see the report for the front")
    else:
        predicted = ", ".join(f"{o} {OBJECTIVES[o].format(v)}" for o, v in (outcome.best_metrics or {}).items())
        console.print(
            f"best within {outcome.prepared.describe_target()}: {outcome.best} (predicted {predicted}); "
            f"export it measured with `prunesearch export --run {runs / parsed.name} --out DIR`"
        )
    console.print(f"report: {report_run(outcome.run, oracle=outcome.prepared.oracle)}")
