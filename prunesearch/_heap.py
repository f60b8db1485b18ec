"""Freed memory handed back to the system while long work runs.

glibc's malloc raises its mmap threshold each time a large block is freed, so after the first few the
tensors of a layer pass (10-25 MB for SmolLM2 at 4k tokens) come from the heap, and what they leave when
freed stays resident: a level database build grew from 1.1 GB to 2.1 GB resident over SmolLM2's 30
layers, though what it held stayed flat. ``malloc_trim`` returns those free pages; a daemon thread calls
it a few times a second, which cost no measurable time (the same build took 39 s with it, 42 s without)
and held the build at 1.5 GB. Other C libraries (musl, macOS) keep no such heap: there it does nothing.

Weights loaded from safetensors stay views of the file's mapping: they become resident as they are read and
stay so (SmolLM2's 513 MB). ``released_file_pages`` hands a module's mapped pages back while it is not in use
(a teacher whose targets are computed); they are read from the file again when next touched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # torch stays out of this module's import: its own allocations would blur the trim
    from torch import Tensor, nn

#: seconds between trims
TRIM_EVERY = 0.25


#: madvise(2): the pages go; a private file mapping's are read from the file again when next touched
_MADV_DONTNEED = 4


def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True) if name else None
    except OSError:
        return None


def _malloc_trim():
    return getattr(_libc(), "malloc_trim", None)


class FileMapping(NamedTuple):
    """One file-backed mapping of this process, as /proc/self/smaps gives it (a tuple, not a dataclass: the tests
    load this module alone, outside sys.modules, where a dataclass cannot resolve its annotations)."""

    start: int
    end: int
    path: str
    #: its numeric fields (``Rss``, ``Anonymous``, ...), in kB
    kb: dict[str, int]


def file_mappings() -> list[FileMapping]:
    """This process's file-backed mappings (none where /proc/self/smaps cannot be read)."""
    try:
        lines = Path("/proc/self/smaps").read_text().splitlines()
    except OSError:
        return []
    found: list[FileMapping] = []
    current: FileMapping | None = None
    for line in lines:
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):  # a mapping's header: range, perms, ..., path
            lo, hi = (int(x, 16) for x in head[0].split("-"))
            current = FileMapping(lo, hi, head[5], {}) if len(head) >= 6 and head[5].startswith("/") else None
            if current is not None:
                found.append(current)
        elif current is not None and len(head) >= 2 and head[0].endswith(":") and head[1].isdigit():
            current.kb[head[0][:-1]] = int(head[1])
    return found


def _clean_file_mappings() -> list[tuple[int, int]]:
    """(start, end) of this process's file-backed mappings none of whose pages were written (``Anonymous: 0``):
    dropping their pages loses nothing."""
    return [(m.start, m.end) for m in file_mappings() if m.kb.get("Anonymous") == 0]


def released_file_pages(module: nn.Module) -> int:
    """Drop the resident pages of ``module``'s CPU tensors that are views of a file mapping never written to (weights
    loaded from safetensors); returns the bytes advised away. Nothing else changes: the tensors read the same, from
    the file, when next used. Elsewhere (another OS, tensors in memory or on a GPU) it does nothing and returns 0."""
    return file_page_releaser()(module)


def file_page_releaser() -> Callable[[nn.Module | Tensor], int]:
    """``released_file_pages`` with this process's mappings read once (reading them takes ~40 ms): for many modules
    (or single tensors) in a row, such as a model's layers, while no file is mapped or written meanwhile."""
    from torch import Tensor

    libc = _libc()
    spans = _clean_file_mappings() if libc is not None and hasattr(libc, "madvise") else []
    if not spans:
        return lambda module: 0
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

    def release(what: nn.Module | Tensor) -> int:
        released = 0
        held = [what] if isinstance(what, Tensor) else [*what.parameters(), *what.buffers()]
        tensors = {id(t): t for t in held if t.device.type == "cpu"}
        for tensor in tensors.values():
            start, size = tensor.data_ptr(), tensor.numel() * tensor.element_size()
            if not any(lo <= start and start + size <= hi for lo, hi in spans):
                continue
            # the pages wholly inside the tensor; one it shares with a neighbour stays
            first = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE
            last = (start + size) // mmap.PAGESIZE * mmap.PAGESIZE
            if last > first and libc.madvise(first, last - first, _MADV_DONTNEED) == 0:
                released += last - first
        return released

    return release


@contextmanager
def pages_released_as_run(layers: Iterable[nn.Module]) -> Iterator[Callable[[nn.Module | Tensor], int]]:
    """While the block runs, each of ``layers`` hands its mapped pages back as soon as its forward has returned
    (``released_file_pages``): a pass over a model loaded from safetensors then holds about one layer of its
    weights resident, not all of them (SmolLM2: 16 MB, not 513 MB). Yields the releaser, for what the layers
    do not cover (embeddings, an output head). The mappings are read once, on entry: the layers must not be
    written to meanwhile (a teacher, a dense reference)."""
    release = file_page_releaser()

    def hook(module: nn.Module, args: tuple, output: object) -> None:
        release(module)  # returns None: a forward hook's value would replace the layer's output

    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        yield release
    finally:
        for handle in handles:
            handle.remove()


def trim() -> None:
    """Free heap pages back to the system now (glibc; elsewhere nothing): after dropping much held in blocks
    below the mmap threshold (an optimiser's moments), before allocating anew."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@contextmanager
def trimmed_heap(*, every: float = TRIM_EVERY) -> Iterator[bool]:
    """While the block runs, free heap pages go back to the system every ``every`` seconds (glibc); yields
    whether this C library trims at all."""
    trim = _malloc_trim()
    if trim is None:
        yield False
        return
    done = threading.Event()

    def loop() -> None:
        while not done.wait(every):
            trim(0)

    thread = threading.Thread(target=loop, name="prunesearch-heap-trim", daemon=True)
    thread.start()
    try:
        yield True
    finally:
        done.set()
        thread.join()
        trim(0)
