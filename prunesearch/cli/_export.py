"""``prunesearch export``: a run's measured pick, or a hand-written config, as a real, smaller model."""

from __future__ import annotations

from pathlib import Path

import typer

from prunesearch.cli._app import app, console, reporter
from prunesearch.errors import PruneSearchError
from prunesearch.export._pick import PICKS


@app.command()
def export(
    out: Path = typer.Option(..., "--out", help="output folder"),
    run: Path = typer.Option(None, "--run", help="a run folder written by `prunesearch search`"),
    pick: str = typer.Option("best", "--pick", help=f"with --run: {PICKS}"),
    model: str = typer.Option(None, "--model", help="model alias (minilm, smollm2) or a local HF folder"),
    config: Path = typer.Option(None, "--config", help='config JSON: {"layers": [{"heads": .., "ffn": ..}, ...]}'),
    table: Path = typer.Option(None, "--table", help="with --model: latency table to predict and measure against"),
    to: str = typer.Option(
        "hf,onnx",
        "--to",
        help="comma-separated formats: hf (loads with trust_remote_code=True; a sentence-transformers model also "
        "gets its modules, for SentenceTransformer), onnx, tensorrt, gguf (Llama decoders, for llama.cpp)",
    ),
    units: str = typer.Option(
        "database",
        "--units",
        help="with --model: database (the level database a search "
        "scores with: Wanda ranking + least-squares reconstruction) or magnitude (plain weight "
        "magnitude, no reconstruction)",
    ),
    candidates: int = typer.Option(
        5,
        "--candidates",
        min=1,
        help="with --run and a limit: the best candidates "
        "predicted within it, timed side by side with the dense model in one window",
    ),
    tries: int = typer.Option(
        2,
        "--tries",
        min=1,
        help="with --run and a limit: windows of --candidates measured "
        "until one candidate's measured speed-up meets the limit",
    ),
    tolerance: float = typer.Option(
        0.0, "--tolerance", min=0.0, help="with --run: allowed measured shortfall from the limit, as a fraction"
    ),
    recover_tokens: int = typer.Option(
        None,
        "--recover-tokens",
        min=0,
        help="tokens of recovery distillation towards the dense model before writing (0: none; the layer-by-layer "
        "refit still runs); with --run, the rest of the spec's recovery options hold (default: its recovery.tokens; "
        "none for --model)",
    ),
) -> None:
    """Write a pruned model (Hugging Face safetensors + arch.json + modelling code, ONNX, TensorRT, GGUF) and
    export.json."""
    from prunesearch.export._manifest import parse_formats
    from prunesearch.prune._recover import RecoveryOptions

    formats = parse_formats(to)
    if (run is None) == (model is None):
        raise PruneSearchError("give either --run RUN (with --pick) or --model MODEL with --config CONFIG")
    given = {"--units": units != "database", "--table": table is not None, "--config": config is not None}
    picking = {
        "--pick": pick != "best",
        "--candidates": candidates != 5,
        "--tries": tries != 2,
        "--tolerance": tolerance != 0.0,
    }
    wrong = [o for o, set_ in (given if run is not None else picking).items() if set_]
    if wrong:
        which = "--model" if run is not None else "--run"
        raise PruneSearchError(
            f"{', '.join(wrong)} applies to {which} exports only; this export is from "
            f"{'a run' if run is not None else 'a model and config'}"
        )
    if run is not None:
        from prunesearch._run import Run
        from prunesearch.export._from_run import export_from_run

        opened = Run.open(run)
        # --recover-tokens changes the budget only: the spec's schedule, recovery text and refit hold
        given = opened.spec.recovery
        recovery = None if recover_tokens is None else given.model_copy(update={"tokens": recover_tokens})
        manifest = export_from_run(
            opened,
            pick=pick,
            out=out,
            formats=formats,
            per_window=candidates,
            windows=tries,
            tolerance=tolerance,
            recovery=recovery,
            reporter=reporter,
        )
    else:
        from prunesearch._config import Config
        from prunesearch.export._from_config import export_config

        if config is None:
            raise PruneSearchError("--model needs --config CONFIG (a pruning config JSON)")
        if units not in ("database", "magnitude"):
            raise PruneSearchError(f"--units {units!r}: choose database or magnitude")
        manifest = export_config(
            model,
            Config.load(config),
            out,
            formats=formats,
            table=table,
            units=units,
            recovery=RecoveryOptions(tokens=recover_tokens or 0),
            reporter=reporter,
        )
    console.print(
        f"wrote {out} ({', '.join(formats)}): {manifest.params / 1e6:.2f}M parameters, {manifest.size_mb:.1f} MB"
    )
    if "speedup" in manifest.predicted:
        console.print(f"predicted {manifest.predicted['speedup']:.3f}x ({manifest.predicted['latency_ms']:.3f} ms)")
    if manifest.measured is not None:
        target = "; target " + ", ".join(c.describe() for c in manifest.target) if manifest.target else ""
        console.print(f"measured {manifest.measured.describe()}{target}")
