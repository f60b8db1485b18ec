"""One shape for everything a module can add to prunesearch: search algorithms, measurement backends, model
families and objectives.

A ``Registry`` maps names to what was registered under them. Where the built-in entries live in a package of
modules that each register their own (``package``), every module of it is imported on first use, so a new
algorithm, backend or family is one new module, and importing prunesearch pays for none of them until asked.
Unknown names are refused with the names that are known.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Generic, TypeVar

from prunesearch.errors import PruneSearchError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str, *, package: str | None = None, error: type[PruneSearchError] = PruneSearchError):
        """``what``: what an entry is, as errors name it ("search algorithm"); ``package``: the package whose
        modules register the built-in entries; ``error``: raised for an unknown name."""
        self.what = what
        self.package = package
        self.error = error
        self._entries: dict[str, T] = {}
        self._discovered = package is None

    def register(self, name: str, entry: T) -> T:
        self._entries[name] = entry
        return entry

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True  # first: a module being imported may register and look up at once
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{module.name}")

    def __getitem__(self, name: str) -> T:
        self._discover()
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(f"unknown {self.what} {name!r}: choose from {', '.join(sorted(self._entries))}") from None

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._discover()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._discover()
        return len(self._entries)

    def items(self) -> list[tuple[str, T]]:
        self._discover()
        return list(self._entries.items())

    def values(self) -> list[T]:
        return [entry for _, entry in self.items()]
