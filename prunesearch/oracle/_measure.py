"""Time whole models side by side with the dense model: the one way prunesearch measures latency.

ONNX Runtime backends time in a clean child process running ``run_bundle.py``, the very file a
remote device runs: every graph is exported first, and the child has no torch intra-op threads, no
export work and no other session's spinning thread pool beside the timing. Other backends (torch,
TensorRT) time in this process with the same schedule, through their profiler's runners.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path

from torch import nn

from prunesearch._heap import released_file_pages
from prunesearch._workload import Workload
from prunesearch.errors import BackendUnavailableError, PruneSearchError
from prunesearch.graph._onnx import GRAPH_FORMAT, export_for, vocab_of
from prunesearch.oracle._conditions import Conditions
from prunesearch.oracle._timing import SideBySide, TimingOptions, timing_plan
from prunesearch.oracle.profilers import profiler_for
from prunesearch.prune._apply import prune
from prunesearch.standalone import run_bundle

#: a model to time: a module, an already exported graph, or a function that builds the module when needed
Source = nn.Module | Path | Callable[[], nn.Module]
#: progress(stage, done, total): stage "export" per graph written, "time" per model settled
Progress = Callable[[str, int, int], None]


def dense_graph(loaded, conditions: Conditions) -> Path:
    """The dense model's graph under ``conditions``, exported once and cached (every measurement's reference)."""
    from prunesearch._paths import cache_dir

    c = conditions
    name = f"{c.model_hash}-{c.file_name().removesuffix('.csv')}-g{GRAPH_FORMAT}.onnx"
    path = cache_dir("reference_graphs") / name
    if not path.is_file():
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        export_for(loaded.model, partial, conditions)
        partial.replace(path)
    return path


def built(source: Source) -> nn.Module | Path:
    return source() if callable(source) and not isinstance(source, nn.Module) else source


def write_graphs(
    folder: Path, sources: Mapping[str, Source], *, workload: Workload, progress: Progress | None = None
) -> None:
    """Each source as ``folder/<name>.onnx``, one model built at a time (an exported graph is linked)."""
    folder.mkdir(parents=True, exist_ok=True)
    for done, (name, source) in enumerate(sources.items(), start=1):
        _write_graph(folder / f"{name}.onnx", source, workload=workload)
        if progress is not None:
            progress("export", done, len(sources))


def _write_graph(target: Path, source: Source, *, workload: Workload) -> None:
    """One source as ``target``; the model it builds is dropped on return, before the next is built (a loop
    variable would hold it until then: two pruned SmolLM2 at once, 356 MB each)."""
    model = built(source)
    if isinstance(model, Path):
        target.unlink(missing_ok=True)
        os.symlink(model.resolve(), target)
    else:
        export_for(model, target, workload)


def run_child(folder: Path, *, ep: str, device: str, progress: Progress | None = None, power_s: float = 0.0) -> dict:
    """``run_bundle.py`` on ``folder`` in a fresh interpreter: its results."""
    out = folder / "results.json"
    cmd = [
        sys.executable,
        "-u",
        run_bundle.__file__,
        "--bundle",
        str(folder),
        "--ep",
        ep,
        "--power-s",
        str(power_s),
        "--device",
        device,
        "--out",
        str(out),
    ]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        for line in child.stdout:  # "[3/37] attn-4: ..." once a graph is settled
            head = line.split("]")[0]
            if progress is not None and line.startswith("[") and "/" in head:
                done, total = head[1:].split("/")
                progress("time", int(done), int(total))
        err = child.stderr.read().strip()
    if child.returncode != 0:
        last = err.splitlines()[-1] if err else "no message"
        raise BackendUnavailableError(f"timing in a child process failed (exit {child.returncode}): {last}")
    return json.loads(out.read_text())


def time_side_by_side(
    sources: Mapping[str, Source],
    *,
    reference: Source,
    workload: Workload,
    vocab: int,
    options: TimingOptions = TimingOptions(),
    progress: Progress | None = None,
    keep_graphs: Path | None = None,
    power_s: float = 0.0,
) -> SideBySide:
    """Every source timed side by side with ``reference`` (the dense model) under ``workload`` (a table's
    conditions, or what a search budgets for), with its backend. Names must be file-name safe; "dense" is
    the reference's. ``keep_graphs``: a folder the exported graphs stay in (``<name>.onnx``: the very files
    measured), instead of a temporary one. ``power_s``: seconds each model also runs back to back for its
    energy per inference, where the backend reads an energy counter (NVML, a board's power rails)."""
    if "dense" in sources:
        raise PruneSearchError("'dense' names the reference; give the other models other names")
    profiler = profiler_for(workload.backend)
    profiler.check()
    with ExitStack() as stack:
        if profiler.takes == "onnx":
            folder = keep_graphs or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="prunesearch-timing-")))
            write_graphs(folder, {"dense": reference, **sources}, workload=workload, progress=progress)
            models, ref_model = {name: folder / f"{name}.onnx" for name in sources}, folder / "dense.onnx"
        else:
            models, ref_model = dict(sources), reference
        if profiler.child_ep is not None:
            plan = timing_plan(workload, vocab=vocab, graphs=list(sources), options=options)
            (folder / "manifest.json").write_text(json.dumps(plan, indent=2))
            results = run_child(
                folder, ep=profiler.child_ep, device=profiler.device(), progress=progress, power_s=power_s
            )
        else:
            results = profiler.time_in_process(
                {name: (lambda s=s: built(s)) for name, s in models.items()},
                reference=built(ref_model),
                workload=workload,
                vocab=vocab,
                options=options.model_dump(),
                on_settled=None
                if progress is None
                else lambda name, result, done, total: progress("time", done, total),
                power_s=power_s,
            )
    return SideBySide.of(results)


def time_configs(
    loaded,
    configs: Mapping[str, object],
    *,
    conditions: Conditions,
    source=None,
    options: TimingOptions = TimingOptions(),
    progress: Progress | None = None,
    keep_graphs: Path | None = None,
    power_s: float = 0.0,
) -> SideBySide:
    """Pruned configs of ``loaded`` side by side with its dense model; units from ``source`` (a level
    database), else by weight magnitude (timing depends on the shapes only). Each pruned model is built when its
    graph is exported and dropped after: an export prunes its pick again (SmolLM2: 0.6 s) rather than hold the
    candidates (356 MB each)."""

    def build(config) -> Callable[[], nn.Module]:
        def pruned() -> nn.Module:
            module = prune(loaded.model, config, source, ffn_step=conditions.ffn_step)
            released_file_pages(loaded.model)  # not read while the pruned copy is exported (SmolLM2: 513 MB)
            return module

        return pruned

    onnx = profiler_for(conditions.backend).takes == "onnx"
    return time_side_by_side(
        {name: build(config) for name, config in configs.items()},
        reference=dense_graph(loaded, conditions) if onnx else loaded.model,
        workload=conditions,
        vocab=vocab_of(loaded.model),
        options=options,
        progress=progress,
        keep_graphs=keep_graphs,
        power_s=power_s,
    )
