"""``prunesearch export``: a run's measured pick, or a hand-written config, as a real, smaller model."""

from __future__ import annotations

from pathlib import Path

import typer

from prunesearch.cli.app import app, console, reporter
from prunesearch.errors import PruneSearchError
from prunesearch.export.pick import PICKS


def export_config(model: str, config: Path, out: Path, formats: list[str], *, table: Path | None):
    """A hand-written config, pruned by weight magnitude; with ``table``, predicted from it and, on its
    device, measured beside the dense model."""
    from prunesearch.config import Config
    from prunesearch.errors import BackendUnavailableError
    from prunesearch.export.manifest import Predicted
    from prunesearch.export.write import write_export, writable
    from prunesearch.models import load_model
    from prunesearch.oracle import LatencyTable, Predictor, time_configs
    from prunesearch.oracle.profilers import profiler_for
    from prunesearch.space import adapter_for

    writable(out)
    cfg = Config.load(config)
    loaded = load_model(model)
    if table is None:
        return write_export(loaded, cfg, out, formats=formats)
    t = LatencyTable.load(table)
    c = t.conditions
    predictor = Predictor(t, adapter_for(loaded.model).space(ffn_step=c.ffn_step))
    measured = None
    try:
        profiler_for(c.backend).check()
        if profiler_for(c.backend).device() == c.device:
            measured = time_configs(loaded, {"export": cfg}, conditions=c)["export"]
    except BackendUnavailableError:
        pass
    ratio = predictor.config_ratio(cfg)
    reference = measured.reference_ms if measured else t.meta.dense_ms
    if measured is None:
        console.print(f"not measured: the table is for {c.backend} on {c.device}")
    return write_export(loaded, cfg, out, formats=formats, conditions=c, table=t.path, measured=measured,
                        predicted=Predicted(speedup=1 / ratio, latency_ms=ratio * reference))


@app.command()
def export(
    out: Path = typer.Option(..., "--out", help="output folder"),
    run: Path = typer.Option(None, "--run", help="a run folder written by `prunesearch search`"),
    pick: str = typer.Option("best", "--pick", help=f"with --run: {PICKS}"),
    model: str = typer.Option(None, "--model", help="model alias (minilm, smollm2) or a local HF folder"),
    config: Path = typer.Option(None, "--config", help='config JSON: {"layers": [{"heads": .., "ffn": ..}, ...]}'),
    table: Path = typer.Option(None, "--table", help="with --model: latency table to predict and measure against"),
    to: str = typer.Option("hf,onnx", "--to", help="comma-separated formats: hf, onnx, tensorrt"),
    candidates: int = typer.Option(5, "--candidates", min=1, help="with --run and a limit: the best candidates "
                                   "predicted within it, timed side by side with the dense model in one window"),
    tries: int = typer.Option(2, "--tries", min=1, help="with --run and a limit: windows of --candidates measured "
                              "until one candidate's measured speed-up meets the limit"),
    tolerance: float = typer.Option(0.0, "--tolerance", min=0.0, help="with --run: allowed measured shortfall from "
                                    "the limit, as a fraction"),
) -> None:
    """Write a pruned model (Hugging Face safetensors + arch.json, ONNX, TensorRT) and export.json."""
    from prunesearch.export.manifest import parse_formats

    formats = parse_formats(to)
    if (run is None) == (model is None):
        raise PruneSearchError("give either --run RUN (with --pick) or --model MODEL with --config CONFIG")
    if run is not None:
        from prunesearch.export.from_run import export_from_run
        from prunesearch.run import Run

        manifest = export_from_run(Run.open(run), pick=pick, out=out, formats=formats, per_window=candidates,
                                   windows=tries, tolerance=tolerance, reporter=reporter)
    else:
        if config is None:
            raise PruneSearchError("--model needs --config CONFIG (a pruning config JSON)")
        manifest = export_config(model, config, out, formats, table=table)
    console.print(f"wrote {out} ({', '.join(formats)})")
    if manifest.predicted is not None:
        console.print(f"predicted {manifest.predicted.speedup:.3f}x ({manifest.predicted.latency_ms:.3f} ms)")
    if manifest.measured is not None:
        target = f"; target {manifest.target.describe()}" if manifest.target else ""
        console.print(f"measured {manifest.measured.describe()}{target}")
