"""Search specs: YAML files in searches/, validated before anything runs.

Every error names the key and, where there is a choice, the allowed values.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from prunesearch._objectives import Constraint, objective
from prunesearch._workload import Workload
from prunesearch.errors import SpecError
from prunesearch.prune._recover import RecoveryOptions


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalibrationSpec(_Strict):
    files: tuple[Path, ...] = ()  # the user's own text files; empty = the shipped default
    seq_len: PositiveInt = 128
    tokens: PositiveInt = 16384  # token budget of the final selection step

    @field_validator("files")
    @classmethod
    def _exist(cls, files: tuple[Path, ...]) -> tuple[Path, ...]:
        missing = [str(f) for f in files if not Path(f).is_file()]
        if missing:
            raise ValueError(f"calibration text not found: {', '.join(missing)}")
        return files


class SpaceSpec(_Strict):
    ffn_step: PositiveInt = 128


class DeviceSpec(Workload):
    """The workload a search budgets for, and which latency table it trusts: ``table: auto`` is this
    machine's table for the workload (shipped, cached or profiled now)."""

    table: str = "auto"
    force: bool = False  # accept a table from other conditions

    @field_validator("backend")
    @classmethod
    def _backend(cls, name: str) -> str:
        from prunesearch.oracle.profilers import PROFILERS

        if name not in PROFILERS:
            raise ValueError(f"unknown backend {name!r}: choose from {', '.join(PROFILERS)}")
        return name

    #: what the device is, said where its backend is missing here (e.g. "an NVIDIA GPU with TensorRT 10 or 11")
    requires: str | None = None


class TargetSpec(_Strict):
    """The constraints the pick must meet: latency (milliseconds, or a speed-up over the dense model),
    energy per inference, parameters, weights' size. ``margin`` keeps a share of each predicted limit
    (latency, speed-up, energy) in reserve for prediction error: the search holds predictions to the
    limit tightened by it; exact ones (parameters, size) are held as given."""

    latency_ms: PositiveFloat | None = None
    speedup: PositiveFloat | None = None
    energy_mj: PositiveFloat | None = None
    params: PositiveInt | None = None
    size_mb: PositiveFloat | None = None
    margin: float = Field(default=0.0, ge=0.0, lt=0.5)
    #: how many of the oracle's uncertainties (the sd of a prediction's log) a predicted limit is held to on
    #: its safe side: 0 holds the corrected prediction itself; the uncertainty shrinks where configs are measured
    confidence: float = Field(default=1.0, ge=0.0, le=4.0)

    @model_validator(mode="after")
    def _one_latency(self) -> TargetSpec:
        if self.latency_ms is not None and self.speedup is not None:
            raise ValueError("give target.latency_ms or target.speedup, not both")
        return self

    def constraints(self) -> list[Constraint]:
        limits = self.model_dump(exclude={"margin", "confidence"}, exclude_none=True)
        return [Constraint(objective=name, limit=float(limit)) for name, limit in limits.items()]


class MeasureSpec(_Strict):
    """Hardware in the loop: every ``every`` evaluations, and once at the end, the search's ``configs`` best
    candidates not measured yet are timed side by side with the dense model on the table's device, and the
    table's correction is refitted on every config measured so far; from then on every prediction the search
    uses is the corrected one. ``every: 0`` turns it off (the search trusts the table); unset: a quarter of the
    evaluation budget. It needs the table's device at hand: a table of a remote device is not corrected."""

    every: NonNegativeInt | None = None
    configs: PositiveInt = 4


class BudgetSpec(_Strict):
    evaluations: PositiveInt = 200
    minutes: PositiveFloat | None = None


class ExecutorSpec(_Strict):
    """Where fitness evaluations run: in the search process (``serial``), a local process pool,
    or Ray tasks (a local Ray instance, or a running cluster at ``address``)."""

    kind: Literal["serial", "local", "ray"] = "serial"
    workers: PositiveInt | None = None  # default: one per CPU (local) / what the cluster offers (ray)
    address: str | None = None  # ray only, e.g. "ray://head:10001" or "head:6379"

    @model_validator(mode="after")
    def _applies(self) -> ExecutorSpec:
        if self.address is not None and self.kind != "ray":
            raise ValueError(f"address is where a Ray cluster runs: it needs kind: ray, not {self.kind}")
        if self.workers is not None and self.kind == "serial":
            raise ValueError("workers needs a parallel executor: kind: local or ray")
        return self


class FitnessSpec(_Strict):
    """Training-aware selection (DarwinLM): configs scored on at least ``finetune_from_tokens`` tokens (every
    selection step when unset) are first fine-tuned for ``finetune_steps`` distillation steps on
    ``finetune_tokens`` of calibration rows that scores are never taken on. 0 steps = one-shot losses."""

    finetune_steps: int = Field(default=0, ge=0)
    finetune_lr: PositiveFloat = 1e-5
    finetune_from_tokens: PositiveInt | None = None
    finetune_tokens: PositiveInt = 8192


class EvaluationSpec(_Strict):
    """What the export is scored on beside the held-out text: ``sts``, a pairs file of sentence 1, sentence 2
    and a gold similarity (CSV or TSV, such as STS-B's dev split) on which an encoder's sentence embeddings are
    scored by the Spearman correlation of their cosine with the gold scores. Evaluation data only: it is never
    calibrated, searched or trained on."""

    sts: Path | None = None

    @field_validator("sts")
    @classmethod
    def _exists(cls, path: Path | None) -> Path | None:
        if path is not None and not Path(path).is_file():
            raise ValueError(f"STS pairs file not found: {path}")
        return path


class SearchSpec(_Strict):
    name: str
    model: str
    calibration: CalibrationSpec = CalibrationSpec()
    space: SpaceSpec = SpaceSpec()
    device: DeviceSpec = DeviceSpec()
    target: TargetSpec = TargetSpec()
    #: what multi-objective algorithms trade off and the report's fronts show (loss first)
    objectives: tuple[str, ...] = ("loss", "latency_ms")
    algorithm: str = "evolution"
    options: dict[str, Any] = Field(default_factory=dict)  # validated by the algorithm's own options model
    budget: BudgetSpec = BudgetSpec()
    measure: MeasureSpec = MeasureSpec()
    executor: ExecutorSpec = ExecutorSpec()
    fitness: FitnessSpec = FitnessSpec()
    #: the exported pick's distillation towards the dense model (``tokens: 0``: none)
    recovery: RecoveryOptions = RecoveryOptions(tokens=65536)
    #: what the export's quality is measured on beside the held-out text
    evaluation: EvaluationSpec = EvaluationSpec()
    seed: int = 0
    storage: str | None = None  # Optuna storage URL; default sqlite file in the run folder

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ValueError(f"{name!r}: a run's name is its folder's: letters, digits, '.', '_' and '-' only")
        return name

    @field_validator("storage")
    @classmethod
    def _storage(cls, url: str | None) -> str | None:
        """An Optuna storage URL with its database driver installed (connecting is tried before the search)."""
        if url is None:
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            parsed = make_url(url)
            parsed.get_dialect()
        except (ArgumentError, ValueError):
            raise ValueError(
                f"{url!r} is not a database URL (e.g. postgresql://user@host/db or sqlite:///study.db)"
            ) from None
        except NoSuchModuleError:
            raise ValueError(
                f"{url!r}: no database kind {url.split(':')[0]!r} (use postgresql, mysql or sqlite)"
            ) from None
        except ImportError:
            extra = " (pip install 'prunesearch[postgres]')" if parsed.get_backend_name() == "postgresql" else ""
            raise ValueError(f"{url!r}: its database driver is not installed{extra}") from None
        return url

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        try:
            names = tuple(objective(n).name for n in names)
        except SpecError as exc:
            raise ValueError(str(exc)) from None
        if "loss" not in names:
            raise ValueError("objectives must include 'loss'")
        if len(set(names)) != len(names):
            raise ValueError("objectives must not repeat")
        return names

    @field_validator("algorithm")
    @classmethod
    def _algorithm(cls, name: str) -> str:
        from prunesearch.search._registry import algorithm

        try:
            algorithm(name)
        except SpecError as exc:
            raise ValueError(str(exc)) from None
        return name

    @model_validator(mode="after")
    def _searchable(self) -> SearchSpec:
        from prunesearch.search._registry import algorithm

        if algorithm(self.algorithm).multi_objective:
            if len(self.objectives) < 2:
                raise ValueError(f"{self.algorithm} trades off objectives: give at least two (e.g. [loss, latency_ms])")
        elif not self.target.constraints():
            raise ValueError(
                f"{self.algorithm} minimises the loss under a target: give at least one target "
                "(speedup, latency_ms, energy_mj, params or size_mb)"
            )
        return self

    @model_validator(mode="after")
    def _budgets(self) -> SearchSpec:
        """Token budgets the algorithm asks for must fit the calibration budget, and fine-tuning must start at
        one of them: a spec that asks for fine-tuning and could never get it is refused."""
        from prunesearch.search._registry import algorithm_options, token_budgets

        try:
            budgets = token_budgets(algorithm_options(self.algorithm, self.options))
        except SpecError:
            return self  # parse_spec reports the options themselves
        if budgets and max(budgets) > self.calibration.tokens:
            raise ValueError(
                f"the algorithm scores on up to {max(budgets)} tokens, more than calibration.tokens "
                f"({self.calibration.tokens}): raise calibration.tokens or lower the options' tokens"
            )
        f = self.fitness
        if f.finetune_from_tokens is not None and not f.finetune_steps:
            raise ValueError(
                "fitness.finetune_from_tokens is set but fitness.finetune_steps is 0: nothing would be "
                "fine-tuned; give finetune_steps"
            )
        if f.finetune_steps and f.finetune_from_tokens and budgets and f.finetune_from_tokens > max(budgets):
            raise ValueError(
                f"fitness.finetune_from_tokens {f.finetune_from_tokens} exceeds every token budget the algorithm "
                f"scores on ({', '.join(map(str, sorted(set(budgets))))}): it would never fine-tune; lower it"
            )
        return self

    @model_validator(mode="after")
    def _measurable(self) -> SearchSpec:
        every = self.measure.every
        if every and every > self.budget.evaluations:
            raise ValueError(
                f"measure.every {every} exceeds budget.evaluations ({self.budget.evaluations}): the loop would "
                "measure only at the end; lower it, or set 0 to turn measurement in the loop off"
            )
        return self

    @property
    def measure_every(self) -> int:
        """Evaluations between measurement windows (0: no measurement in the loop)."""
        every = self.measure.every
        return max(10, self.budget.evaluations // 4) if every is None else every

    def with_evaluation(self, *, sts: Path) -> SearchSpec:
        """This spec scoring its export on the pairs file ``sts`` (a CLI flag), validated like the YAML."""
        data = json.loads(self.model_dump_json())
        data["evaluation"] = {**data["evaluation"], "sts": str(sts)}
        return parse_spec(data, source="--sts")

    def with_executor(self, *, kind: str | None = None, workers: int | None = None) -> SearchSpec:
        """This spec with its executor overridden (CLI flags), validated like the YAML."""
        update = {k: v for k, v in {"kind": kind, "workers": workers}.items() if v is not None}
        data = json.loads(self.model_dump_json())
        data["executor"] = {**data["executor"], **update}
        return parse_spec(data, source="--executor/--workers")

    def storage_url(self, run_dir: Path) -> str:
        return self.storage or f"sqlite:///{(run_dir / 'study.db').resolve()}"


def _format_error(exc: ValidationError, source: str) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "top level"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        parent = _model_at(SearchSpec, first["loc"][:-1])
        allowed = ", ".join(parent.model_fields) if parent else ""
        msg = f"unknown key (allowed here: {allowed})"
    elif first["type"] == "literal_error":
        msg = f"{first['input']!r} is not allowed ({first['ctx']['expected']})"
    elif first["type"] == "missing":
        msg = "required key is missing"
    elif first["type"] == "value_error":
        msg = str(first["ctx"]["error"])
    return f"{source}: {where}: {msg}"


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    for key in loc:
        field = model.model_fields.get(str(key))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def parse_spec(data: object, *, source: str = "spec") -> SearchSpec:
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping of keys (name, model, target, ...), got {type(data).__name__}")
    try:
        spec = SearchSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_error(exc, source)) from None
    from prunesearch.search._registry import algorithm_options

    try:  # the algorithm's own options model, checked before anything slow runs
        algorithm_options(spec.algorithm, spec.options)
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from None
    return spec


def load_spec(path: str | Path) -> SearchSpec:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {path}") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror}") from None
    if not text.strip():
        raise SpecError(f"{path}: the spec file is empty")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}: malformed YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return parse_spec(data, source=str(path))
