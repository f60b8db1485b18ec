"""``prunesearch export``: a run's pick, or a hand-written config, as a real, smaller model."""

from __future__ import annotations

from pathlib import Path

import typer

from prunesearch.cli.app import app, console
from prunesearch.errors import PruneSearchError


def export_from_run(run: Path, pick: str, out: Path, formats: list[str], *, tries: int = 3, tolerance: float = 0.0):
    """Export a run's pick with the run's own level database and table; with a limit (``best``,
    ``latency<=X``), the best config whose measured latency keeps it (see ``export_within``)."""
    from prunesearch.cli.report import open_run
    from prunesearch.export.manifest import export_within, pick_candidates
    from prunesearch.pipeline import build_database, prepare
    from prunesearch.search import load_trials
    from prunesearch.spec import load_spec

    storage, name, attrs = open_run(run)
    spec = load_spec(run / "spec.yaml")
    candidates, limit = pick_candidates(load_trials(storage, name), pick, target_ms=attrs.get("target_ms"))
    searched = attrs.get("table")  # the run's own table, not one found again (ensure may re-profile)
    loaded, _, space, table_path, _, target_ms = prepare(spec, table=Path(searched) if searched else None)
    _, database = build_database(spec, loaded, space)

    def on_miss(manifest, allowed: float) -> None:
        console.print(
            f"measured {manifest.measured_ms:.3f} ms > {allowed:.3f} ms allowed (predicted {manifest.predicted_ms:.3f} ms): "
            "exporting the next-best config predicted to fit after that correction"
        )

    return export_within(
        loaded, candidates, out, limit_ms=limit, tries=tries, tolerance=tolerance, on_miss=on_miss,
        source=database, formats=formats, table_path=table_path, target_ms=target_ms,
    )


@app.command()
def export(
    out: Path = typer.Option(..., "--out", help="output folder"),
    run: Path = typer.Option(None, "--run", help="a run folder written by `prunesearch search`"),
    pick: str = typer.Option("best", "--pick", help="with --run: fastest, best (within the run's target) or latency<=MS"),
    model: str = typer.Option(None, "--model", help="model alias (minilm, smollm2) or a local HF folder"),
    config: Path = typer.Option(None, "--config", help='config JSON: {"layers": [{"heads": .., "ffn": ..}, ...]}'),
    table: Path = typer.Option(None, "--table", help="with --model: latency table to predict and measure against"),
    to: str = typer.Option("hf,onnx", "--to", help="comma-separated formats: hf, onnx, tensorrt"),
    tries: int = typer.Option(3, "--tries", min=1, help="with --run and a limit (best, latency<=MS): configs to export and "
                              "measure until one is measured within the limit"),
    tolerance: float = typer.Option(0.0, "--tolerance", min=0.0, help="with --tries: allowed measured excess over the "
                                    "limit, as a fraction"),
) -> None:
    """Write a pruned model (Hugging Face safetensors + arch.json, ONNX, TensorRT) and export.json."""
    from prunesearch.export.manifest import parse_formats, write_export

    formats = parse_formats(to)
    if (run is None) == (model is None):
        raise PruneSearchError("give either --run RUN (with --pick) or --model MODEL with --config CONFIG")
    if run is not None:
        manifest = export_from_run(run, pick, out, formats, tries=tries, tolerance=tolerance)
    else:
        if config is None:
            raise PruneSearchError("--model needs --config CONFIG (a pruning config JSON)")
        from prunesearch.config import Config
        from prunesearch.models import load_model

        cfg = Config.load(config)
        loaded = load_model(model)
        manifest = write_export(loaded, cfg, out, formats=formats, table_path=table)
    parts = [f"wrote {out} ({', '.join(formats)})"]
    if manifest.predicted_ms is not None:
        parts.append(f"predicted {manifest.predicted_ms:.3f} ms")
    if manifest.measured_ms is not None:
        parts.append(f"measured {manifest.measured_ms:.3f} ms")
    console.print("; ".join(parts))
