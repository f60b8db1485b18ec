"""The entry point: every command module registered on the app, and user errors as one line."""

from __future__ import annotations

import errno
import sys

import typer

from prunesearch._heap import trimmed_heap

# each command module registers its commands on ``app`` when imported
from prunesearch.cli import (  # noqa: F401
    _catalogue,
    _dashboard,
    _demo,
    _eval,
    _export,
    _oracle,
    _report,
    _search,
    _verify,
)
from prunesearch.cli._app import (
    _CLICK_ERROR,
    EXIT_BACKEND_MISSING,
    EXIT_OK,
    EXIT_USER_ERROR,
    app,
    console,
    fail,
)
from prunesearch.errors import BackendUnavailableError, PruneSearchError

#: what a user is told where a disk or database failed midway
RESUMABLE = "; what was stored before is kept: fix it, then run the command again (a search: with --resume)"


def main() -> None:
    """Entry point: user errors become one line and a non-zero exit, never a traceback."""
    try:
        # without standalone mode, click *returns* the code of a typer.Exit raised in a command
        with trimmed_heap():
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
        fix = RESUMABLE if exc.errno in (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT) else ""
        fail(f"{exc.strerror or exc}{where}{fix}")
        sys.exit(EXIT_USER_ERROR)
    except _CLICK_ERROR as exc:  # usage errors: unknown option, bad value
        fail(exc.format_message())
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:
        if not type(exc).__module__.startswith("sqlalchemy"):
            raise
        # the run store's database (SQLite file, PostgreSQL server) failed: full, gone, locked
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        fail(f"the run store failed: {reason}{RESUMABLE}")
        sys.exit(EXIT_USER_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
