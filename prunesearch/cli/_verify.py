"""``prunesearch verify DIR``: the export measured again beside the dense model, against its promise."""

from __future__ import annotations

from pathlib import Path

import typer

from prunesearch.cli._app import EXIT_VERIFY_FAILED, app, console, reporter


def verdict_line(v) -> str:
    return (
        f"measured {v.measured.describe()}; {v.of} {', '.join(c.describe() for c in v.against)} "
        f"(tolerance {v.tolerance:.0%})"
    )


@app.command()
def verify(
    folder: Path = typer.Argument(..., help="a folder written by `prunesearch export`"),
    tolerance: float = typer.Option(
        0.05,
        "--tolerance",
        min=0.0,
        help="allowed shortfall from the target (or, without one, the predicted speed-up), as a fraction",
    ),
) -> None:
    """Measure an export again beside the dense model; exit 3 when it misses its target.

    Timed on its table's device with its backend, against its target (or, without one, its predicted
    speed-up) within the tolerance; the result is added to export.json."""
    from prunesearch.export._verify import verify_export

    v = verify_export(folder, tolerance=tolerance, reporter=reporter)
    if not v.passed:
        console.print(f"[bold red]FAILED[/] {verdict_line(v)}")
        raise typer.Exit(EXIT_VERIFY_FAILED)
    console.print(f"[bold green]OK[/] {verdict_line(v)}")
