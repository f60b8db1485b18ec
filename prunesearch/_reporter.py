"""How the library tells a person what long work is doing, without knowing who is watching.

Library functions take a ``Reporter``: lines (what was decided and measured) and progress bars,
drawn with rich on the console the caller owns (the CLI's writes to stderr). ``Reporter()`` with no
console stays silent, which is what tests and other programs embedding prunesearch get by default.
A console that is not a terminal (a log file, a CI job) cannot redraw a bar, and rich would show it only
when it ends: there a bar is a plain line when it starts, one every ``LOG_EVERY_S`` while it moves, and
one when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: update(completed, total, description): move a bar (None leaves a field as it is)
Update = Callable[..., None]
#: seconds between a bar's progress lines on a console that is not a terminal
LOG_EVERY_S = 30.0


class Reporter:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console

    def line(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, highlight=False)

    @contextmanager
    def bar(self, stage: str, label: str, *, total: int | None = None) -> Iterator[Update]:
        """A progress bar "<stage> <label> [bar] done/total elapsed" for the ``with`` block."""
        if self.console is not None and not self.console.is_terminal:
            with self._logged_bar(stage, label, total=total) as update:
                yield update
            return
        bar = Progress(
            TextColumn(f"[bold]{stage}[/] {{task.description}}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
            disable=self.console is None,
        )
        task = bar.add_task(label, total=total)

        def update(completed: int | None = None, total: int | None = None, description: str | None = None) -> None:
            bar.update(task, **_given(completed=completed, total=total, description=description))

        with bar:
            yield update

    @contextmanager
    def _logged_bar(self, stage: str, label: str, *, total: int | None) -> Iterator[Update]:
        state = {"completed": 0, "total": total, "description": label}
        started = last = time.monotonic()

        def say() -> None:
            done = f"{state['completed']:,}" + ("" if state["total"] is None else f"/{state['total']:,}")
            self.line(f"{stage} {state['description']}: {done} ({time.monotonic() - started:.0f} s)")

        def update(completed: int | None = None, total: int | None = None, description: str | None = None) -> None:
            nonlocal last
            state.update(_given(completed=completed, total=total, description=description))
            if time.monotonic() - last >= LOG_EVERY_S:
                last = time.monotonic()
                say()

        self.line(f"{stage} {label}")
        yield update
        say()


def _given(**fields) -> dict:
    """The fields an update moves (None leaves a field as it is)."""
    return {k: v for k, v in fields.items() if v is not None}


#: the silent default
QUIET = Reporter()
