"""``prunesearch dashboard RUN``: optuna-dashboard on a run's storage, to watch it while it goes."""

from __future__ import annotations

from pathlib import Path

import typer

from prunesearch.cli._app import app, console


@app.command()
def dashboard(
    run: Path = typer.Argument(..., help="a run folder written by `prunesearch search` (running or stopped)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to serve on (0.0.0.0: every interface)"),
    port: int = typer.Option(8080, "--port", min=1, max=65535),
) -> None:
    """Serve optuna-dashboard on RUN's study: each trial's config, predicted objectives, loss and token budget."""
    from prunesearch._run import Run
    from prunesearch.errors import BackendUnavailableError

    opened = Run.open(run)
    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise BackendUnavailableError(
            "the dashboard needs optuna-dashboard: pip install 'prunesearch[dashboard]' (`make install` does)"
        ) from None
    console.print(f"dashboard of {opened.name} ({opened.storage}) on http://{host}:{port}/ (Ctrl-C stops it)")
    run_server(opened.storage, host=host, port=port)
