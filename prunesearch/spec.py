"""Search specs: YAML files in searches/, validated before anything runs.

Every error names the key and, where there is a choice, the allowed values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError, model_validator

from prunesearch.errors import SpecError

Algorithm = Literal["evolution", "supernet", "policy_gradient", "nsga2", "optuna_nsga2", "random"]
Objective = Literal["loss", "latency_ms", "energy_mj", "params"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalibrationSpec(_Strict):
    files: tuple[Path, ...] = ()  # the user's own text files; empty = the shipped default
    seq_len: PositiveInt = 128
    tokens: PositiveInt = 16384  # token budget of the final selection step


class SpaceSpec(_Strict):
    ffn_step: PositiveInt = 128


class DeviceSpec(_Strict):
    """Which latency table the search trusts. ``table: auto`` = this machine's CPU table."""

    table: str = "auto"
    backend: Literal["ort-cpu", "ort-cuda", "ort-tensorrt", "tensorrt", "trtexec", "torch-cpu", "torch-cuda"] = "ort-cpu"
    batch: PositiveInt = 1
    seq_len: PositiveInt = 128
    threads: PositiveInt = 1
    phase: Literal["encode", "prefill", "decode"] = "encode"
    cache_len: int = 0
    force: bool = False  # accept a table from other conditions
    requires: str | None = None  # free text shown when the device is absent, e.g. "an NVIDIA GPU with TensorRT"


class TargetSpec(_Strict):
    """The latency budget: an absolute time or a speed-up over the dense model."""

    latency_ms: PositiveFloat | None = None
    speedup: PositiveFloat | None = None
    energy_mj: PositiveFloat | None = None
    params: PositiveInt | None = None
    #: share of the target kept in reserve for prediction error: the search budget is target × (1 − margin)
    margin: float = Field(default=0.0, ge=0.0, lt=0.5)

    @model_validator(mode="after")
    def _one_latency(self) -> TargetSpec:
        if (self.latency_ms is None) == (self.speedup is None):
            raise ValueError("give exactly one of target.latency_ms or target.speedup")
        return self


class BudgetSpec(_Strict):
    evaluations: PositiveInt = 200
    minutes: PositiveFloat | None = None


class ExecutorSpec(_Strict):
    """Where fitness evaluations run: in the search process (``serial``), a local process pool,
    or Ray tasks (a local Ray instance, or a running cluster at ``address``)."""

    kind: Literal["serial", "local", "ray"] = "serial"
    workers: PositiveInt | None = None  # default: one per CPU (local) / what the cluster offers (ray)
    address: str | None = None  # ray only, e.g. "ray://head:10001"


class FitnessSpec(_Strict):
    """Training-aware selection (DarwinLM): configs scored on the final token budget are first
    fine-tuned for ``finetune_steps`` distillation steps. 0 = one-shot losses."""

    finetune_steps: int = Field(default=0, ge=0)
    finetune_lr: PositiveFloat = 1e-5


class SearchSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    model: str
    calibration: CalibrationSpec = CalibrationSpec()
    space: SpaceSpec = SpaceSpec()
    device: DeviceSpec = DeviceSpec()
    target: TargetSpec
    objectives: tuple[Objective, ...] = ("loss", "latency_ms")
    algorithm: Algorithm = "evolution"
    options: dict[str, Any] = Field(default_factory=dict)  # validated by the algorithm's own options model
    budget: BudgetSpec = BudgetSpec()
    executor: ExecutorSpec = ExecutorSpec()
    fitness: FitnessSpec = FitnessSpec()
    seed: int = 0
    storage: str | None = None  # Optuna storage URL; default sqlite file in the run folder

    @model_validator(mode="after")
    def _objectives(self) -> SearchSpec:
        if "loss" not in self.objectives:
            raise ValueError("objectives must include 'loss'")
        if len(set(self.objectives)) != len(self.objectives):
            raise ValueError("objectives must not repeat")
        return self

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
    from prunesearch.search.runner import algorithm_options

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
