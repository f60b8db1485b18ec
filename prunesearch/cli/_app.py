"""The ``prunesearch`` command. Each area registers its commands on ``app`` from its own module."""

from __future__ import annotations

import typer
from rich.console import Console

from prunesearch._reporter import Reporter

app = typer.Typer(
    name="prunesearch",
    help="Hardware-aware search for structured pruning of transformer models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
#: what the library reports (lines, progress bars) goes to the same console
reporter = Reporter(console)


@app.callback()
def _group() -> None:
    """Hardware-aware search for structured pruning of transformer models."""


#: click's usage-error base as typer raises it (typer >= 0.29 vendors its own click)
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

#: exit codes scripts can rely on
EXIT_OK = 0
EXIT_USER_ERROR = 2  # bad input: spec, config, model, table, missing file
EXIT_VERIFY_FAILED = 3  # measured latency misses the target
EXIT_BACKEND_MISSING = 4  # a backend (TensorRT, CUDA, NVML) is not installed


def fail(message: str, *, code: int = EXIT_USER_ERROR) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)
