"""Where the project keeps caches (converted checkpoints, level databases, local tables)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$PRUNESEARCH_CACHE`` or ``~/.cache/prunesearch``, joined with ``parts`` and created."""
    root = Path(os.environ.get("PRUNESEARCH_CACHE", Path.home() / ".cache" / "prunesearch"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())
