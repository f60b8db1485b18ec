"""One search from a spec: model -> space -> oracle -> budget -> level database -> fitness -> search.

Used by ``prunesearch search SPEC`` and the demo. Everything slow is cached (converted checkpoints,
level databases, local latency tables) and every evaluated and every measured config is stored, so a
killed run resumes with ``resume=True``, against the table, reference and corrections it had. Each piece
is built once and passed on: ``prepare`` gives a ``PreparedSearch`` that the search, the export's measured
pick and the report all use.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from prunesearch._config import Config
from prunesearch._models import LoadedModel
from prunesearch._objectives import OBJECTIVES, Constraint, Metrics
from prunesearch._reporter import QUIET, Reporter
from prunesearch._run import SPEC_FILE, Run
from prunesearch._spec import CalibrationSpec, SearchSpec
from prunesearch._workload import BYTES
from prunesearch.errors import SpecError
from prunesearch.oracle import (
    Conditions,
    LatencyTable,
    MeasuredConfig,
    Measurer,
    Oracle,
    TableChoice,
    check_table,
    ensure_table,
)
from prunesearch.oracle.profilers import profiler_for
from prunesearch.search import Budget, MeasurementLoop, RunStore, SearchProblem, run_search
from prunesearch.space import Adapter, Space, adapter_for

#: seconds each measured model also runs for its energy per inference, where a search budgets energy
POWER_S = 2.0


@dataclass
class PreparedSearch:
    """Everything a search, an export or a check needs, each built once: the model and its space, the oracle
    (the table, the correction measured configs teach it, how to measure here) and the budget the spec's target
    makes of it. The level database, which is slow, is built on first use (``database``) and kept."""

    spec: SearchSpec
    loaded: LoadedModel
    adapter: Adapter
    space: Space
    choice: TableChoice
    oracle: Oracle
    budget: Budget
    _database: tuple | None = field(default=None, init=False, repr=False)

    @property
    def metrics(self) -> Metrics:
        return self.budget.metrics

    @property
    def constraints(self) -> list[Constraint]:
        return self.budget.constraints

    @property
    def reference_ms(self) -> float:
        return self.oracle.reference_ms

    def describe_target(self) -> str:
        return f"{self.budget.describe()}; dense model {self.reference_ms:.3f} ms"

    def database(self, *, reporter: Reporter = QUIET):
        """(the calibration set, the level database) of the spec's calibration, built once; measurements from
        then on time the database's units, the ones exported."""
        if self._database is None:
            spec = self.spec
            self._database = build_database(
                self.loaded, self.space, calibration=spec.calibration, seed=spec.seed, reporter=reporter
            )
            if self.oracle.measurer is not None:
                self.oracle.measurer.source = self._database[1]
        return self._database


@dataclass(frozen=True)
class RunOutcome:
    run: Run
    prepared: PreparedSearch
    best: Config | None
    #: the best config's predicted objectives
    best_metrics: dict[str, float] | None


def wanted_conditions(spec: SearchSpec, loaded: LoadedModel, table: LatencyTable) -> Conditions:
    """What ``table`` must have been measured under to answer for this spec: the spec's workload for this
    model, measured here where the table's device is at hand; else on the table's own device (not at hand),
    whose name, backend version and platform only the table can tell."""
    workload, step = spec.device.workload(), spec.space.ffn_step
    profiler = profiler_for(workload.backend)
    if profiler.at_hand(table.conditions):
        return Conditions.here(loaded, workload, ffn_step=step)
    wanted = table.conditions.with_workload(loaded, workload, ffn_step=step)
    profiler.supports(wanted)
    return wanted


def _table(spec: SearchSpec, loaded: LoadedModel, stored: TableChoice | None, reporter: Reporter) -> TableChoice:
    """The stored run's table, this machine's (``device.table: auto``: oracle.ensure_table), or the table the
    spec names, loaded once and refused where its conditions are not the spec's (unless device.force)."""
    if stored is not None:
        return stored
    d = spec.device
    if d.table == "auto":
        return ensure_table(loaded, d.workload(), ffn_step=spec.space.ffn_step, reporter=reporter, requires=d.requires)
    table = LatencyTable.load(d.table)
    table.conditions.require(wanted_conditions(spec, loaded, table), source=str(table.path), force=d.force)
    return TableChoice(table=table, reference_ms=table.meta.dense_ms, how="given")


def prepare(
    spec: SearchSpec,
    *,
    table: TableChoice | None = None,
    measurements: list[MeasuredConfig] = (),
    reporter: Reporter = QUIET,
) -> PreparedSearch:
    """Model, space, oracle and budget. ``table``: the one a stored run searched with (its export or resumption
    must predict and target as the search did) instead of choosing one again; ``measurements``: the configs the
    run measured, which correct its oracle. A target no config can meet is refused before anything slow."""
    from prunesearch._models import load_model

    reporter.line(f"loading model [bold]{spec.model}[/]")
    loaded = load_model(spec.model)
    adapter = adapter_for(loaded.model)
    space = adapter.space(ffn_step=spec.space.ffn_step)
    choice = _table(spec, loaded, table, reporter)
    conditions = choice.table.conditions
    at_hand = profiler_for(conditions.backend).at_hand(conditions)
    measurer = Measurer(loaded=loaded, conditions=conditions) if at_hand else None
    oracle = Oracle(choice.table, space, reference_ms=choice.reference_ms, measurer=measurer)
    metrics = Metrics(space=space, adapter=adapter, oracle=oracle, bytes_per_param=BYTES[conditions.precision])
    target = spec.target
    budget = Budget(metrics, target.constraints(), margin=target.margin, confidence=target.confidence)
    if measurer is not None and oracle.has_energy and "energy_mj" in _budgeted(spec):
        measurer.power_s = POWER_S
    if choice.how == "given" and at_hand:  # a given table of this machine: checked against it now, used either way
        check = check_table(loaded, choice.table, conditions)
        verdict = "" if check.fits else "; this machine runs differently now (device.table: auto would re-profile)"
        reporter.line(f"table {choice.path}: {check.describe()}{verdict}")
        choice = TableChoice(table=choice.table, reference_ms=check.reference_ms, how="given", check=check)
        oracle.reference_ms = check.reference_ms
    elif not at_hand and table is None:
        reporter.line(
            f"table {choice.path} was measured on {conditions.device}, not at hand: milliseconds scale its dense "
            f"model as measured there ({choice.table.meta.dense_ms:.3f} ms), and nothing is measured here"
        )
    if choice.check is not None:
        genomes = [space.to_genome(c) for c in choice.check.configs]
        oracle.add(oracle.records(genomes, choice.check.measured, stage="check"))
    oracle.add(list(measurements))
    return PreparedSearch(
        spec=spec, loaded=loaded, adapter=adapter, space=space, choice=choice, oracle=oracle, budget=budget
    )


def _budgeted(spec: SearchSpec) -> set[str]:
    """The objectives a spec constrains or trades off."""
    return {c.objective for c in spec.target.constraints()} | set(spec.objectives)


def calibration_for(loaded: LoadedModel, calibration: CalibrationSpec = CalibrationSpec(), *, seed: int = 0):
    """A spec's calibration text for this model: packed chunks for a decoder, separate texts for an encoder."""
    from prunesearch.prune._calibration import load_calibration

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
    from prunesearch.prune._database import LevelDatabase
    from prunesearch.search._fitness import fitness_device

    texts = calibration_for(loaded, calibration, seed=seed)
    device, _ = fitness_device()  # the database in fp32 wherever it is fitted: least squares needs it
    return texts, LevelDatabase.build(loaded, texts, space=space, reporter=reporter, device=device)


@contextmanager
def _closing(*closables):
    """Close each of ``closables`` that is not None on the way out (the executor, the store's claims)."""
    try:
        yield
    finally:
        for closable in closables:
            if closable is not None:
                closable.close()


def _stored_run(run_dir: Path, spec: SearchSpec) -> Run | None:
    """The stored search of this spec, so a resumed search predicts as it did: the run in ``run_dir``, else the
    study in the spec's storage (a process joining, on a shared PostgreSQL, a search another machine started)."""
    from prunesearch.errors import PruneSearchError
    from prunesearch.search import study_attrs

    try:
        if (run_dir / SPEC_FILE).is_file():
            return Run.open(run_dir)
        attrs = study_attrs(spec.storage_url(run_dir), spec.name)
    except (PruneSearchError, KeyError):
        return None
    storage = spec.storage_url(run_dir)
    return Run(folder=run_dir, spec=spec, storage=storage, attrs=attrs) if "table" in attrs else None


def measurement_loop(prepared: PreparedSearch, *, reporter: Reporter = QUIET) -> MeasurementLoop | None:
    """The spec's measurement in the loop, where the oracle can measure here; None (and why) where not."""
    spec, oracle = prepared.spec, prepared.oracle
    every = spec.measure_every
    if not every:
        reporter.line("measurement in the loop is off (measure.every: 0): the search trusts the table")
        return None
    if not oracle.can_measure:
        c = oracle.conditions
        if spec.measure.every:
            raise SpecError(
                f"measure.every: configs cannot be measured during the search: the table is for {c.backend} on "
                f"{c.device}, which is not at hand; set measure.every: 0 (the search then trusts the table), and "
                "measure the exported pick on that device (`prunesearch verify`)"
            )
        reporter.line(
            f"no measurement in the loop: the table's device ({c.device}) is not at hand, so the search trusts "
            "the table; verify the export on that device (`prunesearch verify`)"
        )
        return None
    return MeasurementLoop(every=every, configs=spec.measure.configs, reporter=reporter)


def run_spec(
    spec: SearchSpec,
    *,
    run_dir: Path,
    resume: bool = False,
    reporter: Reporter = QUIET,
) -> RunOutcome:
    """Search ``spec`` into ``run_dir`` (resuming a stored run there with ``resume``). The report is the
    caller's to write (``report.report_run``), from the outcome."""
    from prunesearch.search._executor import make_executor
    from prunesearch.search._fitness import DistillationFitness, fitness_device

    # refused before anything is written or computed: a stored run's folder is never overwritten
    exists = RunStore.check(spec.storage_url(run_dir), spec.name, resume=resume)
    stored = _stored_run(run_dir, spec) if exists else None  # `--resume` of a run never started starts it
    prepared = prepare(
        spec,
        table=None if stored is None else stored.table(),
        measurements=[] if stored is None else stored.measurements(stage="check"),
        reporter=reporter,
    )
    loop = measurement_loop(prepared, reporter=reporter)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SPEC_FILE).write_text(yaml.safe_dump(json.loads(spec.model_dump_json()), sort_keys=False))
    reporter.line(f"target {prepared.describe_target()}; table {prepared.choice.describe()}")
    calibration, database = prepared.database(reporter=reporter)
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
    attrs = {
        "model": spec.model,
        "table": str(prepared.choice.path),
        "dense_ms": prepared.reference_ms,
        "objectives": list(spec.objectives),
        "algorithm": spec.algorithm,
    }
    store = RunStore.open(storage, spec.name, resume=resume, objectives=spec.objectives, attrs=attrs)
    checked = [m.model_dump(mode="json") for m in prepared.oracle.measurements if m.stage == "check"]
    if checked and stored is None:
        store.add_measurements(CHECK_WINDOW, checked)
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
            budget=prepared.budget,
            store=store,
            objectives=spec.objectives,
            max_evaluations=spec.budget.evaluations,
            max_seconds=None if spec.budget.minutes is None else spec.budget.minutes * 60,
            on_evaluation=tick,
            executor=executor,
            unit_importance=database.group_importance(),
            loop=loop,
        )
        result = run_search(problem, spec.algorithm, spec.options, seed=spec.seed)
    loaded = prepared.loaded
    best = "none within the target"
    if result.best is not None:
        predicted = ", ".join(f"{o} {OBJECTIVES[o].format(v)}" for o, v in result.best_metrics.items())
        best = f"{result.best} (loss {result.best_loss:.4f}; predicted {predicted})"
    facts = {
        "model": f"{spec.model} ({loaded.notes})" if loaded.notes else spec.model,
        "latency table": prepared.choice.describe(),
        "target": prepared.describe_target(),
        "objectives": ", ".join(spec.objectives),
        "algorithm": f"{spec.algorithm}, seed {spec.seed}, {result.evaluations} evaluations in {result.seconds:.0f} s",
        "measured configs": f"{len(prepared.oracle.measurements)} beside the dense model",
        "best": best,
    }
    store.study.set_user_attr("report_facts", facts)
    run = Run(folder=run_dir, spec=spec, storage=storage, attrs=attrs | {"report_facts": facts})
    return RunOutcome(run=run, prepared=prepared, best=result.best, best_metrics=result.best_metrics)


#: the study attribute window the table's check models are stored under (the loop's windows are numbered)
CHECK_WINDOW = "check"
