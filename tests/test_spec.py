from pathlib import Path

import pytest

from prunesearch.errors import SpecError
from prunesearch.spec import load_spec, parse_spec

SEARCHES = sorted((Path(__file__).resolve().parents[1] / "searches").glob("*.yaml"))


@pytest.mark.parametrize("path", SEARCHES, ids=lambda p: p.stem)
def test_shipped_specs_validate(path):
    spec = load_spec(path)
    assert spec.name and spec.model in {"minilm", "smollm2"}


def test_target_needs_exactly_one_latency_and_margin_bounds():
    base = {"name": "x", "model": "minilm"}
    with pytest.raises(SpecError, match="exactly one of target.latency_ms or target.speedup"):
        parse_spec({**base, "target": {"latency_ms": 5, "speedup": 2}})
    with pytest.raises(SpecError, match="target.margin"):
        parse_spec({**base, "target": {"speedup": 2, "margin": 0.7}})
    spec = parse_spec({**base, "target": {"speedup": 2}})
    assert spec.storage_url(Path("/r")) == "sqlite:////r/study.db"
    with pytest.raises(SpecError, match="objectives must include 'loss'"):
        parse_spec({**base, "target": {"speedup": 2}, "objectives": ["latency_ms"]})


def test_executor_and_fitness_keys_and_cli_override():
    base = {"name": "x", "model": "minilm", "target": {"speedup": 2}}
    spec = parse_spec({**base, "executor": {"kind": "local", "workers": 2}, "fitness": {"finetune_steps": 4}})
    assert (spec.executor.kind, spec.executor.workers, spec.fitness.finetune_steps) == ("local", 2, 4)
    assert parse_spec(base).executor.kind == "serial"
    assert spec.with_executor(kind="ray").executor.model_dump() == {"kind": "ray", "workers": 2, "address": None}
    with pytest.raises(SpecError, match=r"executor.kind: 'gpu' is not allowed \('serial', 'local' or 'ray'\)"):
        parse_spec({**base, "executor": {"kind": "gpu"}})
    with pytest.raises(SpecError, match="--executor/--workers: executor.kind"):
        spec.with_executor(kind="threads")
    with pytest.raises(SpecError, match=r"fitness.steps: unknown key \(allowed here: finetune_steps, finetune_lr\)"):
        parse_spec({**base, "fitness": {"steps": 4}})
