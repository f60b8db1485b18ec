"""``prunesearch export``: a config (or a run's pick) as a real, smaller model."""

from __future__ import annotations

from pathlib import Path

import typer

from prunesearch.cli.app import app, console


@app.command()
def export(
    model: str = typer.Option(..., "--model", help="model alias (minilm, smollm2) or a local HF folder"),
    config: Path = typer.Option(..., "--config", help="pruning config JSON: {\"layers\": [{\"heads\": .., \"ffn\": ..}]}"),
    out: Path = typer.Option(..., "--out", help="output folder"),
    to: str = typer.Option("hf", "--to", help="comma-separated formats: hf, onnx"),
) -> None:
    """Prune MODEL to CONFIG and write it as a real, smaller model."""
    import prunesearch as ps

    cfg = ps.Config.load(config)
    loaded = ps.load_model(model)
    pruned = ps.prune(loaded.model, cfg)
    ps.save(pruned, out, tokenizer=loaded.tokenizer)
    console.print(f"wrote {out}")
