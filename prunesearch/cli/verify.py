"""``prunesearch verify DIR``: measure an export on its table's conditions against its promise."""

from __future__ import annotations

from pathlib import Path

import typer

from prunesearch.cli.app import EXIT_VERIFY_FAILED, app, console
from prunesearch.errors import BackendUnavailableError, PruneSearchError


def verify_export(folder: Path, *, tolerance: float = 0.05) -> tuple[bool, dict]:
    """(passed, facts): the export's measured latency against its target (or prediction)."""
    from transformers import AutoConfig

    from prunesearch.export.manifest import read_manifest
    from prunesearch.oracle import measure_onnx

    manifest = read_manifest(folder)
    onnx = Path(folder) / "model.onnx"
    if not onnx.is_file():
        raise PruneSearchError(f"{folder} has no model.onnx; export with --to hf,onnx")
    if manifest.conditions is None or manifest.backend != "ort-cpu":
        raise BackendUnavailableError(
            f"verify measures here with ONNX Runtime CPU; this export's table is for {manifest.backend!r}: "
            "run verify on that device"
        )
    c = manifest.conditions
    vocab = AutoConfig.from_pretrained(folder).vocab_size
    measured = measure_onnx(
        onnx, batch=c["batch"], seq_len=c["seq_len"], threads=c["threads"], vocab=vocab, cache_len=c.get("cache_len", 0),
        budget_s=3.0,
    ).latency_ms
    promise = manifest.target_ms if manifest.target_ms is not None else manifest.predicted_ms
    error = measured / promise - 1
    facts = {"measured_ms": measured, "target_ms": manifest.target_ms, "predicted_ms": manifest.predicted_ms,
             "error_vs_promise": error, "tolerance": tolerance}
    return error <= tolerance, facts


@app.command()
def verify(
    folder: Path = typer.Argument(..., help="a folder written by `prunesearch export`"),
    tolerance: float = typer.Option(0.05, "--tolerance", help="allowed excess over the target, as a fraction"),
) -> None:
    """Measure the exported model; exit 3 when it misses its target by more than the tolerance."""
    passed, f = verify_export(folder, tolerance=tolerance)
    what = "target" if f["target_ms"] is not None else "prediction"
    promise = f["target_ms"] if f["target_ms"] is not None else f["predicted_ms"]
    line = (f"measured {f['measured_ms']:.3f} ms vs {what} {promise:.3f} ms ({f['error_vs_promise']:+.1%}); "
            f"predicted {f['predicted_ms']:.3f} ms")
    if not passed:
        console.print(f"[bold red]FAILED[/] {line} (tolerance {tolerance:.0%})")
        raise typer.Exit(EXIT_VERIFY_FAILED)
    console.print(f"[bold green]OK[/] {line}")
