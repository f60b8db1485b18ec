"""The ``prunesearch`` command. Each area registers its commands on ``app`` from its own module."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from prunesearch.errors import PruneSearchError
from prunesearch.reporter import Reporter

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


def main() -> None:
    """Entry point: user errors become one line and a non-zero exit, never a traceback."""
    from prunesearch.cli import commands  # noqa: F401  (registers every command)
    from prunesearch.errors import BackendUnavailableError

    try:
        # without standalone mode, click *returns* the code of a typer.Exit raised in a command
        code = app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except BackendUnavailableError as exc:
        fail(str(exc), code=EXIT_BACKEND_MISSING)
        sys.exit(EXIT_BACKEND_MISSING)
    except PruneSearchError as exc:
        fail(str(exc))
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        console.print("interrupted; everything already stored is kept (resume with --resume)")
        sys.exit(130)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        fail(f"{exc.strerror or exc}{where}")
        sys.exit(EXIT_USER_ERROR)
    except _CLICK_ERROR as exc:  # usage errors: unknown option, bad value
        fail(exc.format_message())
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
