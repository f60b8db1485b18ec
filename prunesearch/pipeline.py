"""One search from a spec: model → space → table → level database → fitness → search → report.

Used by ``prunesearch search SPEC`` and the demo. Everything slow is cached
(converted checkpoints, level databases, local latency tables) and every
evaluated config is stored, so a killed run resumes with ``resume=True``.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from prunesearch.cli.app import console
from prunesearch.config import Config
from prunesearch.spec import SearchSpec


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    storage: str
    study_name: str
    table: Path
    target_ms: float
    dense_ms: float
    best: Config | None
    best_predicted_ms: float | None
    report: Path


def _table(spec: SearchSpec, loaded) -> Path:
    from prunesearch.oracle import ensure_table

    if spec.device.table != "auto":
        return Path(spec.device.table)
    d = spec.device
    return ensure_table(
        loaded, backend=d.backend, batch=d.batch, seq_len=d.seq_len, threads=d.threads,
        phase=d.phase, cache_len=d.cache_len, ffn_step=spec.space.ffn_step, console=console,
    )


def prepare(spec: SearchSpec, *, table: Path | None = None):
    """Model, space, predictor and target: everything but the (slow) level database. ``table``:
    the one a stored run searched with (its export must predict and target as the search did),
    instead of finding one for the spec again."""
    from prunesearch.models import load_model
    from prunesearch.oracle import LatencyTable, Predictor, conditions_for
    from prunesearch.search.problem import check_feasible
    from prunesearch.space import adapter_for

    console.print(f"loading model [bold]{spec.model}[/]")
    loaded = load_model(spec.model)
    adapter = adapter_for(loaded.model)
    space = adapter.space(ffn_step=spec.space.ffn_step)
    table_path = table or _table(spec, loaded)
    d = spec.device
    wanted = conditions_for(
        loaded, batch=d.batch, seq_len=d.seq_len, threads=d.threads, ffn_step=spec.space.ffn_step, phase=d.phase,
        cache_len=d.cache_len,
    )
    table = LatencyTable.load(table_path)
    if d.backend != "ort-cpu":  # a table of a device not at hand: only the model and shapes must match
        wanted = wanted.model_copy(update={"backend": d.backend, "device": table.conditions.device})
    table.conditions.require(wanted, source=str(table.path), force=d.force)
    predictor = Predictor(table, space)
    target_ms = spec.target.latency_ms or predictor.dense_ms / spec.target.speedup
    check_feasible(predictor, space, target_ms * (1 - spec.target.margin))  # before any slow step
    return loaded, adapter, space, table_path, predictor, target_ms


def build_database(spec: SearchSpec, loaded, space):
    """The calibration set and the (cached) level database a spec's search and export share."""
    from prunesearch.prune.calibration import load_calibration
    from prunesearch.prune.database import LevelDatabase

    calibration = load_calibration(
        loaded.tokenizer, files=list(spec.calibration.files) or None, seq_len=spec.calibration.seq_len, seed=spec.seed,
        rows="chunks" if loaded.is_decoder else "texts",
    )
    return calibration, LevelDatabase.build(loaded, calibration, space=space, progress=True)


@contextmanager
def _closing(executor):
    try:
        yield executor
    finally:
        if executor is not None:
            executor.close()


def run_spec(spec: SearchSpec, *, run_dir: Path, resume: bool = False, report_dir: Path | None = None) -> RunOutcome:
    from prunesearch.report import build_report
    from prunesearch.search import RunStore, SearchProblem, load_trials, run_search
    from prunesearch.search.executor import make_executor
    from prunesearch.search.fitness import DistillationFitness

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.yaml").write_text(yaml.safe_dump(json.loads(spec.model_dump_json()), sort_keys=False))
    loaded, adapter, space, table_path, predictor, target_ms = prepare(spec)
    console.print(
        f"dense model predicted at {predictor.dense_ms:.3f} ms; target {target_ms:.3f} ms "
        f"({predictor.dense_ms / target_ms:.2f}x, searched with a {spec.target.margin:.1%} margin) from table {table_path}"
    )
    calibration, database = build_database(spec, loaded, space)
    fitness = DistillationFitness(
        loaded.model, database, calibration.calib(spec.calibration.tokens), is_decoder=adapter.is_decoder,
        finetune_steps=spec.fitness.finetune_steps, finetune_lr=spec.fitness.finetune_lr,
        finetune_from_tokens=spec.calibration.tokens,
    )
    storage = spec.storage_url(run_dir)
    store = RunStore.open(
        storage, spec.name, resume=resume,
        attrs={"model": spec.model, "table": str(table_path), "target_ms": target_ms,
               "dense_ms": predictor.dense_ms, "algorithm": spec.algorithm},
    )
    executor = None if spec.executor.kind == "serial" else make_executor(
        spec.executor.kind, workers=spec.executor.workers, address=spec.executor.address
    )
    with Progress(
        TextColumn("[bold]search[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=False,
    ) as bar, _closing(executor):
        task = bar.add_task(spec.algorithm, total=spec.budget.evaluations)

        def tick(n: int, loss: float, latency: float) -> None:
            bar.update(task, completed=n, description=f"{spec.algorithm} loss {loss:.4f} @ {latency:.2f} ms")

        problem = SearchProblem(
            space=space, fitness=fitness, predictor=predictor, target_ms=target_ms * (1 - spec.target.margin), store=store,
            params=adapter.param_count, max_evaluations=spec.budget.evaluations,
            max_seconds=None if spec.budget.minutes is None else spec.budget.minutes * 60,
            on_evaluation=tick, executor=executor, unit_importance=database.group_importance(),
        )
        result = run_search(problem, spec.algorithm, spec.options, seed=spec.seed)
    trials = load_trials(storage, spec.name)
    report = build_report(
        {spec.name: trials}, report_dir or run_dir, target_ms=target_ms, title=f"prunesearch: {spec.name}",
        facts={
            "model": f"{spec.model} ({loaded.notes})" if loaded.notes else spec.model,
            "latency table": str(table_path),
            "dense predicted": f"{predictor.dense_ms:.3f} ms",
            "target": f"{target_ms:.3f} ms",
            "algorithm": f"{spec.algorithm}, seed {spec.seed}, {result.evaluations} evaluations in {result.seconds:.0f} s",
            "best": f"{result.best} (loss {result.best_loss:.4f}, {result.best_latency_ms:.3f} ms)" if result.best else "none within target",
        },
    )
    return RunOutcome(
        run_dir=run_dir, storage=storage, study_name=spec.name, table=table_path, target_ms=target_ms,
        dense_ms=predictor.dense_ms, best=result.best, best_predicted_ms=result.best_latency_ms, report=report,
    )
