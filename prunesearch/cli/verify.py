"""``prunesearch verify DIR``: the export measured again beside the dense model, against its promise."""

from __future__ import annotations

from pathlib import Path

import typer

from prunesearch.cli.app import EXIT_VERIFY_FAILED, app, console, reporter


def verdict_line(v) -> str:
    return (f"measured {v.measured.describe()}; {v.of} {v.against.describe()} "
            f"(tolerance {v.tolerance:.0%})")


@app.command()
def verify(
    folder: Path = typer.Argument(..., help="a folder written by `prunesearch export`"),
    tolerance: float = typer.Option(0.05, "--tolerance", min=0.0, help="allowed shortfall from the target (or, "
                                    "without one, the predicted speed-up), as a fraction"),
) -> None:
    """Time the exported model side by side with the dense model on its table's device; exit 3 when it
    misses its target (or prediction) by more than the tolerance. The result is added to export.json."""
    from prunesearch.export.verify import verify_export

    v = verify_export(folder, tolerance=tolerance, reporter=reporter)
    if not v.passed:
        console.print(f"[bold red]FAILED[/] {verdict_line(v)}")
        raise typer.Exit(EXIT_VERIFY_FAILED)
    console.print(f"[bold green]OK[/] {verdict_line(v)}")
