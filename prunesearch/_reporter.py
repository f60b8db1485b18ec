"""How the library tells a person what long work is doing, without knowing who is watching.

Library functions take a ``Reporter``: lines (what was decided and measured) and progress bars,
drawn with rich on the console the caller owns (the CLI's writes to stderr). ``Reporter()`` with no
console stays silent, which is what tests and other programs embedding prunesearch get by default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: update(completed, total, description): move a bar (None leaves a field as it is)
Update = Callable[..., None]


class Reporter:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console

    def line(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, highlight=False)

    @contextmanager
    def bar(self, stage: str, label: str, *, total: int | None = None) -> Iterator[Update]:
        """A progress bar "<stage> <label> [bar] done/total elapsed" for the ``with`` block."""
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
            fields = {"completed": completed, "total": total, "description": description}
            bar.update(task, **{k: v for k, v in fields.items() if v is not None})

        with bar:
            yield update


#: the silent default
QUIET = Reporter()
