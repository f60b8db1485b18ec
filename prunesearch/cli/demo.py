"""``prunesearch demo``: search MiniLM for 2x on this CPU, report, export and verify."""

from __future__ import annotations

from pathlib import Path

import typer

from prunesearch.cli.app import EXIT_VERIFY_FAILED, app, console

DEMO_SPEC = Path("searches/minilm-ort-cpu-2x.yaml")
#: the demo's promise: the exported model measures at most 2% over its target
VERIFY_TOLERANCE = 0.02


@app.command()
def demo(
    spec: Path = typer.Option(DEMO_SPEC, "--spec", help="the demo's search spec"),
    out: Path = typer.Option(Path("reports/demo"), "--out", help="report folder (the export goes to OUT/export)"),
    fresh: bool = typer.Option(False, "--fresh", help="start the search over instead of resuming a stored one"),
) -> None:
    """Real search on all-MiniLM-L6-v2 for a 2x speed-up with ONNX Runtime on this CPU."""
    from prunesearch.cli.export import export_from_run
    from prunesearch.cli.verify import verify_export
    from prunesearch.pipeline import run_spec
    from prunesearch.spec import load_spec

    parsed = load_spec(spec)
    run_dir = Path("runs") / parsed.name
    if fresh and run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    outcome = run_spec(parsed, run_dir=run_dir, resume=True, report_dir=out)
    console.print(f"report: {outcome.report}")
    export_from_run(run_dir, "best", out / "export", ["hf", "onnx"], tries=3)
    console.print(f"exported the best config measured within the target to {out / 'export'} (HF safetensors + ONNX + export.json)")
    passed, f = verify_export(out / "export", tolerance=VERIFY_TOLERANCE)
    console.print(
        f"dense {outcome.dense_ms:.3f} ms -> target {f['target_ms']:.3f} ms; export predicted {f['predicted_ms']:.3f} ms, "
        f"measured {f['measured_ms']:.3f} ms ({f['error_vs_promise']:+.1%} vs target)"
    )
    if not passed:
        raise typer.Exit(EXIT_VERIFY_FAILED)
