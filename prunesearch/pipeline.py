"""One search from a spec: model -> space -> table -> level database -> fitness -> search -> report.

Used by ``prunesearch search SPEC`` and the demo. Everything slow is cached (converted checkpoints,
level databases, local latency tables) and every evaluated config is stored, so a killed run
resumes with ``resume=True``, against the table and reference it started with.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from prunesearch.config import Config
from prunesearch.models import LoadedModel
from prunesearch.oracle import LatencyTable, Predictor, TableChoice
from prunesearch.reporter import QUIET, Reporter
from prunesearch.run import SPEC_FILE, Run
from prunesearch.space import Adapter, Space
from prunesearch.spec import SearchSpec


@dataclass(frozen=True)
class Target:
    """The latency a search must meet: milliseconds, and the speed-up over the dense model where the spec
    gave one (then the milliseconds are the dense model's measured time divided by it)."""

    latency_ms: float
    speedup: float | None
    #: the share kept in reserve for prediction error: the search's budget is latency_ms x (1 - margin)
    margin: float
    #: the dense model's milliseconds, measured (now, or with the table for a device not at hand)
    reference_ms: float

    @property
    def budget_ms(self) -> float:
        return self.latency_ms * (1 - self.margin)

    def describe(self) -> str:
        speedup = f"{self.speedup:.2f}x, " if self.speedup is not None else ""
        return f"{speedup}{self.latency_ms:.3f} ms (dense {self.reference_ms:.3f} ms, searched with a {self.margin:.1%} margin)"


@dataclass(frozen=True)
class PreparedSearch:
    """Everything a search, an export or a check needs but the (slow) level database."""

    spec: SearchSpec
    loaded: LoadedModel
    adapter: Adapter
    space: Space
    table: TableChoice
    predictor: Predictor
    target: Target


@dataclass(frozen=True)
class RunOutcome:
    run: Run
    prepared: PreparedSearch
    best: Config | None
    best_predicted_ms: float | None
    report: Path


def choose_table(spec: SearchSpec, loaded: LoadedModel, *, reporter: Reporter = QUIET) -> TableChoice:
    """``device.table: auto``: this machine's table (oracle.ensure_table); a given table of this machine
    is checked against whole models measured now (and used either way: it was asked for); a table of a
    device not at hand scales its ratios by the dense model as measured with it."""
    from prunesearch.errors import BackendUnavailableError
    from prunesearch.oracle import check_table, ensure_table
    from prunesearch.oracle.profilers import profiler_for

    d = spec.device
    if d.table == "auto":
        return ensure_table(
            loaded, backend=d.backend, batch=d.batch, seq_len=d.seq_len, threads=d.threads,
            phase=d.phase, cache_len=d.cache_len, ffn_step=spec.space.ffn_step, reporter=reporter,
        )
    path = Path(d.table)
    table = LatencyTable.load(path)
    profiler = profiler_for(table.conditions.backend)
    try:
        profiler.check()
        here = profiler.device() == table.conditions.device
    except BackendUnavailableError:
        here = False
    if not here:
        reporter.line(f"table {path} was measured on {table.conditions.device}, not at hand: milliseconds scale "
                      f"its dense model as measured there ({table.meta.dense_ms:.3f} ms)")
        return TableChoice(path=path, reference_ms=table.meta.dense_ms, how="given")
    check = check_table(loaded, table, table.conditions)
    verdict = "" if check.fits else "; this machine runs differently now (device.table: auto would re-profile)"
    reporter.line(f"table {path}: {check.describe()}{verdict}")
    return TableChoice(path=path, reference_ms=check.reference_ms, how="given", check=check)


def _checked(spec: SearchSpec, loaded: LoadedModel, space: Space, path: Path, reference_ms: float | None):
    """The table at ``path`` refused where its conditions are not the spec's (unless device.force), and the
    spec's target where no config reaches it: a predictor and target, or an error before any slow step."""
    from prunesearch.oracle import conditions_for
    from prunesearch.search.problem import check_feasible

    d = spec.device
    wanted = conditions_for(
        loaded, batch=d.batch, seq_len=d.seq_len, threads=d.threads, ffn_step=spec.space.ffn_step, phase=d.phase,
        cache_len=d.cache_len,
    )
    table = LatencyTable.load(path)
    if d.backend != "ort-cpu":  # a table of a device not at hand: only the model and shapes must match
        wanted = wanted.model_copy(update={"backend": d.backend, "device": table.conditions.device})
    table.conditions.require(wanted, source=str(table.path), force=d.force)
    predictor = Predictor(table, space, reference_ms=reference_ms)
    t = spec.target
    target = Target(latency_ms=t.latency_ms or predictor.reference_ms / t.speedup, speedup=t.speedup, margin=t.margin,
                    reference_ms=predictor.reference_ms)
    check_feasible(predictor, space, target.budget_ms)
    return predictor, target


def prepare(spec: SearchSpec, *, table: TableChoice | None = None, reporter: Reporter = QUIET) -> PreparedSearch:
    """Model, space, table, predictor and target. ``table``: the one a stored run searched with (its
    export or resumption must predict and target as the search did) instead of choosing one again."""
    from prunesearch.models import load_model
    from prunesearch.space import adapter_for

    reporter.line(f"loading model [bold]{spec.model}[/]")
    loaded = load_model(spec.model)
    adapter = adapter_for(loaded.model)
    space = adapter.space(ffn_step=spec.space.ffn_step)
    if table is None and spec.device.table != "auto":  # a given table's conditions and reach, before measuring
        _checked(spec, loaded, space, Path(spec.device.table), None)
    choice = table or choose_table(spec, loaded, reporter=reporter)
    predictor, target = _checked(spec, loaded, space, choice.path, choice.reference_ms)
    return PreparedSearch(spec=spec, loaded=loaded, adapter=adapter, space=space, table=choice, predictor=predictor,
                          target=target)


def build_database(prepared: PreparedSearch, *, reporter: Reporter = QUIET):
    """The calibration set and the (cached) level database a spec's search and export share."""
    from prunesearch.prune.calibration import load_calibration
    from prunesearch.prune.database import LevelDatabase

    spec, loaded = prepared.spec, prepared.loaded
    calibration = load_calibration(
        loaded.tokenizer, files=list(spec.calibration.files) or None, seq_len=spec.calibration.seq_len, seed=spec.seed,
        rows="chunks" if loaded.is_decoder else "texts",
    )
    return calibration, LevelDatabase.build(loaded, calibration, space=prepared.space, reporter=reporter)


@contextmanager
def _closing(executor):
    try:
        yield executor
    finally:
        if executor is not None:
            executor.close()


def _stored_run(run_dir: Path, spec: SearchSpec) -> Run | None:
    """The run already stored in ``run_dir`` for this spec's study, if any."""
    from prunesearch.errors import PruneSearchError

    try:
        return Run.open(run_dir) if (run_dir / SPEC_FILE).is_file() else None
    except PruneSearchError:
        return None


def run_spec(
    spec: SearchSpec, *, run_dir: Path, resume: bool = False, report_dir: Path | None = None,
    reporter: Reporter = QUIET,
) -> RunOutcome:
    """Search ``spec`` into ``run_dir`` (resuming a stored run there with ``resume``) and write its report."""
    from prunesearch.report import report_run
    from prunesearch.search import RunStore, SearchProblem, run_search
    from prunesearch.search.executor import make_executor
    from prunesearch.search.fitness import DistillationFitness

    stored = _stored_run(run_dir, spec) if resume else None
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SPEC_FILE).write_text(yaml.safe_dump(json.loads(spec.model_dump_json()), sort_keys=False))
    prepared = prepare(spec, table=stored.table() if stored else None, reporter=reporter)
    target, predictor = prepared.target, prepared.predictor
    reporter.line(f"target {target.describe()}; table {prepared.table.describe()}")
    calibration, database = build_database(prepared, reporter=reporter)
    fitness = DistillationFitness(
        prepared.loaded.model, database, calibration.calib(spec.calibration.tokens), is_decoder=prepared.adapter.is_decoder,
        finetune_steps=spec.fitness.finetune_steps, finetune_lr=spec.fitness.finetune_lr,
        finetune_from_tokens=spec.calibration.tokens,
    )
    storage = spec.storage_url(run_dir)
    store = RunStore.open(
        storage, spec.name, resume=resume,
        attrs={"model": spec.model, "table": str(prepared.table.path), "dense_ms": target.reference_ms,
               "target_ms": target.latency_ms, "target_speedup": target.speedup, "margin": target.margin,
               "algorithm": spec.algorithm},
    )
    executor = None if spec.executor.kind == "serial" else make_executor(
        spec.executor.kind, workers=spec.executor.workers, address=spec.executor.address
    )
    with reporter.bar("search", spec.algorithm, total=spec.budget.evaluations) as update, _closing(executor):

        def tick(n: int, loss: float, latency: float) -> None:
            update(completed=n, description=f"{spec.algorithm} loss {loss:.4f} @ {latency:.2f} ms")

        problem = SearchProblem(
            space=prepared.space, fitness=fitness, predictor=predictor, target_ms=target.budget_ms, store=store,
            params=prepared.adapter.param_count, max_evaluations=spec.budget.evaluations,
            max_seconds=None if spec.budget.minutes is None else spec.budget.minutes * 60,
            on_evaluation=tick, executor=executor, unit_importance=database.group_importance(),
        )
        result = run_search(problem, spec.algorithm, spec.options, seed=spec.seed)
    loaded = prepared.loaded
    store.study.set_user_attr("report_facts", {
        "model": f"{spec.model} ({loaded.notes})" if loaded.notes else spec.model,
        "latency table": prepared.table.describe(),
        "target": target.describe(),
        "algorithm": f"{spec.algorithm}, seed {spec.seed}, {result.evaluations} evaluations in {result.seconds:.0f} s",
        "best": f"{result.best} (loss {result.best_loss:.4f}, {result.best_latency_ms:.3f} ms predicted)"
                if result.best else "none within target",
    })
    run = Run.open(run_dir)
    return RunOutcome(run=run, prepared=prepared, best=result.best, best_predicted_ms=result.best_latency_ms,
                      report=report_run(run, report_dir))
