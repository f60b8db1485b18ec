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
from prunesearch.errors import PruneSearchError, SpecError
from prunesearch.models import LoadedModel
from prunesearch.objectives import OBJECTIVES, Constraint, Metrics
from prunesearch.oracle import Conditions, LatencyTable, Predictor, TableChoice
from prunesearch.reporter import QUIET, Reporter
from prunesearch.run import SPEC_FILE, Run
from prunesearch.space import Adapter, Space, adapter_for
from prunesearch.spec import CalibrationSpec, SearchSpec
from prunesearch.workload import BYTES


@dataclass(frozen=True)
class PreparedSearch:
    """Everything a search, an export or a check needs but the (slow) level database: the model and its
    space, the table and its predictor (ratios scaled by the dense model measured now), the metrics every
    objective is predicted from, and the spec's constraints."""

    spec: SearchSpec
    loaded: LoadedModel
    adapter: Adapter
    space: Space
    table: TableChoice
    predictor: Predictor
    metrics: Metrics
    constraints: list[Constraint]

    @property
    def margin(self) -> float:
        return self.spec.target.margin

    @property
    def reference_ms(self) -> float:
        return self.predictor.reference_ms

    def describe_target(self) -> str:
        limits = ", ".join(c.describe() for c in self.constraints) or "none"
        return f"{limits} (dense model {self.reference_ms:.3f} ms; searched with a {self.margin:.1%} margin)"


@dataclass(frozen=True)
class RunOutcome:
    run: Run
    prepared: PreparedSearch
    best: Config | None
    #: the best config's predicted objectives
    best_metrics: dict[str, float] | None
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
        return ensure_table(loaded, d.workload(), ffn_step=spec.space.ffn_step, reporter=reporter, requires=d.requires)
    path = Path(d.table)
    table = LatencyTable.load(path)
    profiler = profiler_for(table.conditions.backend)
    try:
        profiler.check()
        here = profiler.device() == table.conditions.device
    except BackendUnavailableError:
        here = False
    if not here:
        reporter.line(
            f"table {path} was measured on {table.conditions.device}, not at hand: milliseconds scale "
            f"its dense model as measured there ({table.meta.dense_ms:.3f} ms)"
        )
        return TableChoice(path=path, reference_ms=table.meta.dense_ms, how="given")
    check = check_table(loaded, table, table.conditions)
    verdict = "" if check.fits else "; this machine runs differently now (device.table: auto would re-profile)"
    reporter.line(f"table {path}: {check.describe()}{verdict}")
    return TableChoice(path=path, reference_ms=check.reference_ms, how="given", check=check)


def wanted_conditions(spec: SearchSpec, loaded: LoadedModel, table: LatencyTable) -> Conditions:
    """What a table must have been measured under for this spec: its workload for this model, on this
    machine where the backend runs here and the table says this device; else on the table's own device
    (a device not at hand), whose name, backend version and platform only it can tell."""
    from prunesearch.errors import BackendUnavailableError
    from prunesearch.oracle import conditions_for
    from prunesearch.oracle.profilers import profiler_for

    try:
        here = conditions_for(loaded, spec.device.workload(), ffn_step=spec.space.ffn_step)
    except BackendUnavailableError:
        here = None
    except PruneSearchError as exc:
        raise SpecError(f"device: {exc}") from None
    if here is not None and here.device == table.conditions.device:
        return here
    try:
        workload = spec.device.workload().resolved(
            is_decoder=loaded.is_decoder, inputs=adapter_for(loaded.model).inputs
        )
    except ValueError as exc:
        raise SpecError(f"device: {loaded.name}: {exc}") from None
    profiler_for(workload.backend).supports(workload)
    t = table.conditions
    return Conditions(
        **workload.model_dump(),
        device=t.device,
        backend_version=t.backend_version,
        platform=t.platform,
        model=loaded.name,
        model_hash=loaded.weights_hash,
        ffn_step=spec.space.ffn_step,
    )


def _checked(
    spec: SearchSpec, loaded: LoadedModel, adapter: Adapter, space: Space, path: Path, reference_ms: float | None
) -> tuple[Predictor, Metrics]:
    """The table at ``path`` refused where its conditions are not the spec's (unless device.force), and the
    spec's constraints where no config meets them (or an objective they name cannot be predicted here): a
    predictor and the metrics, or an error before any slow step."""
    from prunesearch.search.problem import check_feasible

    table = LatencyTable.load(path)
    table.conditions.require(wanted_conditions(spec, loaded, table), source=str(table.path), force=spec.device.force)
    predictor = Predictor(table, space, reference_ms=reference_ms)
    metrics = Metrics(
        space=space, adapter=adapter, predictor=predictor, bytes_per_param=BYTES[table.conditions.precision]
    )
    check_feasible(metrics, spec.target.constraints(), margin=spec.target.margin)
    return predictor, metrics


def prepare(spec: SearchSpec, *, table: TableChoice | None = None, reporter: Reporter = QUIET) -> PreparedSearch:
    """Model, space, table, predictor, metrics and constraints. ``table``: the one a stored run searched
    with (its export or resumption must predict and target as the search did) instead of choosing one again."""
    from prunesearch.models import load_model

    reporter.line(f"loading model [bold]{spec.model}[/]")
    loaded = load_model(spec.model)
    adapter = adapter_for(loaded.model)
    space = adapter.space(ffn_step=spec.space.ffn_step)
    if table is None and spec.device.table != "auto":  # a given table's conditions and reach, before measuring
        _checked(spec, loaded, adapter, space, Path(spec.device.table), None)
    choice = table or choose_table(spec, loaded, reporter=reporter)
    predictor, metrics = _checked(spec, loaded, adapter, space, choice.path, choice.reference_ms)
    return PreparedSearch(
        spec=spec,
        loaded=loaded,
        adapter=adapter,
        space=space,
        table=choice,
        predictor=predictor,
        metrics=metrics,
        constraints=spec.target.constraints(),
    )


def calibration_for(loaded: LoadedModel, calibration: CalibrationSpec = CalibrationSpec(), *, seed: int = 0):
    """A spec's calibration text for this model: packed chunks for a decoder, separate texts for an encoder."""
    from prunesearch.prune.calibration import load_calibration

    return load_calibration(
        loaded.tokenizer,
        files=list(calibration.files) or None,
        seq_len=calibration.seq_len,
        seed=seed,
        rows="chunks" if loaded.is_decoder else "texts",
    )


def build_database(
    loaded: LoadedModel,
    space: Space,
    *,
    calibration: CalibrationSpec = CalibrationSpec(),
    seed: int = 0,
    reporter: Reporter = QUIET,
):
    """The calibration set and the (cached) level database a spec's search and its exports share; a config
    exported by hand with the default calibration gets the database a default search scored with."""
    from prunesearch.prune.database import LevelDatabase
    from prunesearch.search.fitness import fitness_device

    texts = calibration_for(loaded, calibration, seed=seed)
    device, _ = fitness_device()  # the database in fp32 wherever it is fitted: least squares needs it
    return texts, LevelDatabase.build(loaded, texts, space=space, reporter=reporter, device=device)


def prepared_database(prepared: PreparedSearch, *, reporter: Reporter = QUIET):
    """``build_database`` for a prepared search's spec."""
    spec = prepared.spec
    return build_database(
        prepared.loaded, prepared.space, calibration=spec.calibration, seed=spec.seed, reporter=reporter
    )


@contextmanager
def _closing(*closables):
    """Close each of ``closables`` that is not None on the way out (the executor, the store's claims)."""
    try:
        yield
    finally:
        for closable in closables:
            if closable is not None:
                closable.close()


def _stored_table(run_dir: Path, spec: SearchSpec) -> TableChoice | None:
    """The table a stored search of this spec ran against, so a resumed search predicts as it did: from
    the run in ``run_dir``, else from the study in the spec's storage (a process joining, on a shared
    PostgreSQL, a search another machine started)."""
    from prunesearch.errors import PruneSearchError
    from prunesearch.run import table_of
    from prunesearch.search import study_attrs

    try:
        if (run_dir / SPEC_FILE).is_file():
            return Run.open(run_dir).table()
        attrs = study_attrs(spec.storage_url(run_dir), spec.name)
    except (PruneSearchError, KeyError):
        return None
    return table_of(attrs) if "table" in attrs else None


def run_spec(
    spec: SearchSpec,
    *,
    run_dir: Path,
    resume: bool = False,
    report_dir: Path | None = None,
    reporter: Reporter = QUIET,
) -> RunOutcome:
    """Search ``spec`` into ``run_dir`` (resuming a stored run there with ``resume``) and write its report."""
    from prunesearch.report import report_run
    from prunesearch.search import RunStore, SearchProblem, run_search
    from prunesearch.search.executor import make_executor
    from prunesearch.search.fitness import DistillationFitness, fitness_device

    # refused before anything is written or computed: a stored run's folder is never overwritten
    exists = RunStore.check(spec.storage_url(run_dir), spec.name, resume=resume)
    stored = _stored_table(run_dir, spec) if exists else None  # `--resume` of a run never started starts it
    prepared = prepare(spec, table=stored, reporter=reporter)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SPEC_FILE).write_text(yaml.safe_dump(json.loads(spec.model_dump_json()), sort_keys=False))
    reporter.line(f"target {prepared.describe_target()}; table {prepared.table.describe()}")
    calibration, database = prepared_database(prepared, reporter=reporter)
    device, dtype = fitness_device()
    fitness = DistillationFitness(
        prepared.loaded.model,
        database,
        calibration.calib(spec.calibration.tokens),
        is_decoder=prepared.adapter.is_decoder,
        finetune_steps=spec.fitness.finetune_steps,
        finetune_lr=spec.fitness.finetune_lr,
        finetune_from_tokens=spec.fitness.finetune_from_tokens or 0,
        tuning=calibration.training(
            spec.fitness.finetune_tokens, held_back=spec.recovery.validation_tokens, skip=spec.calibration.tokens
        )
        if spec.fitness.finetune_steps
        else None,
        device=device,
        dtype=dtype,
    )
    storage = spec.storage_url(run_dir)
    store = RunStore.open(
        storage,
        spec.name,
        resume=resume,
        objectives=spec.objectives,
        attrs={
            "model": spec.model,
            "table": str(prepared.table.path),
            "dense_ms": prepared.reference_ms,
            "constraints": [c.model_dump() for c in prepared.constraints],
            "margin": prepared.margin,
            "objectives": list(spec.objectives),
            "algorithm": spec.algorithm,
        },
    )
    executor = (
        None
        if spec.executor.kind == "serial"
        else make_executor(spec.executor.kind, workers=spec.executor.workers, address=spec.executor.address)
    )
    with reporter.bar("search", spec.algorithm, total=spec.budget.evaluations) as update, _closing(executor, store):
        shown = [c.objective for c in prepared.constraints] or [o for o in spec.objectives if o != "loss"]

        def tick(n: int, loss: float, metrics: dict) -> None:
            values = ", ".join(OBJECTIVES[o].format(metrics[o]) for o in shown[:2] if o in metrics)
            update(completed=n, description=f"{spec.algorithm} loss {loss:.4f} @ {values}")

        problem = SearchProblem(
            space=prepared.space,
            fitness=fitness,
            metrics=prepared.metrics,
            constraints=prepared.constraints,
            store=store,
            objectives=spec.objectives,
            margin=prepared.margin,
            max_evaluations=spec.budget.evaluations,
            max_seconds=None if spec.budget.minutes is None else spec.budget.minutes * 60,
            on_evaluation=tick,
            executor=executor,
            unit_importance=database.group_importance(),
        )
        result = run_search(problem, spec.algorithm, spec.options, seed=spec.seed)
    loaded = prepared.loaded
    best = "none within the target"
    if result.best is not None:
        predicted = ", ".join(f"{o} {OBJECTIVES[o].format(v)}" for o, v in result.best_metrics.items())
        best = f"{result.best} (loss {result.best_loss:.4f}; predicted {predicted})"
    store.study.set_user_attr(
        "report_facts",
        {
            "model": f"{spec.model} ({loaded.notes})" if loaded.notes else spec.model,
            "latency table": prepared.table.describe(),
            "target": prepared.describe_target(),
            "objectives": ", ".join(spec.objectives),
            "algorithm": f"{spec.algorithm}, seed {spec.seed}, "
            f"{result.evaluations} evaluations in {result.seconds:.0f} s",
            "best": best,
        },
    )
    run = Run.open(run_dir)
    return RunOutcome(
        run=run,
        prepared=prepared,
        best=result.best,
        best_metrics=result.best_metrics,
        report=report_run(run, report_dir),
    )
