"""``prunesearch list``: what this install can use, read from the registries at run time."""

from __future__ import annotations

from rich.table import Table

from prunesearch.cli._app import app, console


@app.command("list")
def list_registered() -> None:
    """The measurement backends (available here, or what to install), search algorithms and objectives."""
    from prunesearch._objectives import OBJECTIVES
    from prunesearch.errors import BackendUnavailableError
    from prunesearch.oracle.profilers import PROFILERS, profiler_for
    from prunesearch.search._registry import ALGORITHMS

    backends = Table("backend", "precisions", "here", title="measurement backends (spec device.backend, --backend)")
    for name in PROFILERS:
        profiler = profiler_for(name)
        try:
            profiler.check()
            here = "available"
        except BackendUnavailableError as exc:
            here = str(exc)
        backends.add_row(name, ", ".join(profiler.precisions), here)
    algorithms = Table("algorithm", "kind", "options", title="search algorithms (spec algorithm, options)")
    for name, registered in ALGORITHMS.items():
        kind = "multi-objective" if registered.multi_objective else "loss under the constraints"
        algorithms.add_row(name, kind, ", ".join(registered.options.model_fields))
    objectives = Table("objective", "unit", "direction", "aliases", title="objectives (spec objectives, target)")
    for o in OBJECTIVES.values():
        objectives.add_row(o.name, o.unit, o.direction, ", ".join(o.aliases))
    for table in (backends, algorithms, objectives):
        console.print(table)
