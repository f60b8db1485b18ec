from pathlib import Path

import pytest

from prunesearch import load_spec, parse_spec
from prunesearch.errors import SpecError

SEARCHES = sorted((Path(__file__).resolve().parents[1] / "searches").glob("*.yaml"))


@pytest.mark.parametrize("path", SEARCHES, ids=lambda p: p.stem)
def test_shipped_specs_validate(path):
    spec = load_spec(path)
    assert spec.name and spec.model in {"minilm", "smollm2"}


def test_targets_map_onto_constraints_and_are_refused_where_they_cannot_be_honoured():
    base = {"name": "x", "model": "minilm"}
    with pytest.raises(SpecError, match="target: give target.latency_ms or target.speedup, not both"):
        parse_spec({**base, "target": {"latency_ms": 5, "speedup": 2}})
    spec = parse_spec({**base, "target": {"speedup": 2, "params": 15_000_000, "size_mb": 60, "energy_mj": 5}})
    assert [c.describe() for c in spec.target.constraints()] == [
        "speedup >= 2.000x",
        "energy_mj <= 5 mJ",
        "params <= 15.00M",
        "size_mb <= 60 MB",
    ]
    with pytest.raises(SpecError, match="evolution minimises the loss under a target: give at least one target"):
        parse_spec(base)
    assert parse_spec({**base, "algorithm": "nsga2", "objectives": ["loss", "latency_ms", "params"]}).objectives == (
        "loss",
        "latency_ms",
        "params",
    )
    with pytest.raises(SpecError, match="nsga2 trades off objectives: give at least two"):
        parse_spec({**base, "algorithm": "nsga2", "objectives": ["loss"]})
    with pytest.raises(SpecError, match="objectives: unknown objective 'watts'; known: loss, latency_ms"):
        parse_spec({**base, "target": {"speedup": 2}, "objectives": ["loss", "watts"]})
    with pytest.raises(SpecError, match="algorithm: unknown search algorithm 'annealing': choose from evolution"):
        parse_spec({**base, "target": {"speedup": 2}, "algorithm": "annealing"})
    with pytest.raises(SpecError, match="device.backend: unknown backend 'tpu'"):
        parse_spec({**base, "target": {"speedup": 2}, "device": {"backend": "tpu"}})
    with pytest.raises(SpecError, match="device: a decode-phase workload needs cache_len > 0"):
        parse_spec({**base, "target": {"speedup": 2}, "device": {"phase": "decode"}})
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
    with pytest.raises(SpecError, match=r"fitness.steps: unknown key \(allowed here: finetune_steps, finetune_lr, "):
        parse_spec({**base, "fitness": {"steps": 4}})


def test_training_aware_selection_that_could_never_run_is_refused():
    base = {
        "name": "x",
        "model": "minilm",
        "target": {"speedup": 2},
        "calibration": {"tokens": 8192},
        "options": {"selection": [[2048, 3], [8192, 1]]},
    }
    spec = parse_spec({**base, "fitness": {"finetune_steps": 4, "finetune_from_tokens": 8192}})
    assert spec.fitness.finetune_from_tokens == 8192
    with pytest.raises(SpecError, match=r"finetune_from_tokens 16384 exceeds every token budget .* \(2048, 8192\)"):
        parse_spec({**base, "fitness": {"finetune_steps": 4, "finetune_from_tokens": 16384}})
    with pytest.raises(SpecError, match="finetune_steps is 0: nothing would be fine-tuned"):
        parse_spec({**base, "fitness": {"finetune_from_tokens": 2048}})
    with pytest.raises(SpecError, match="scores on up to 8192 tokens, more than calibration.tokens \\(4096\\)"):
        parse_spec({**base, "calibration": {"tokens": 4096}})
    assert parse_spec(base).recovery.tokens > 0  # the exported model is distilled by default
    assert parse_spec({**base, "recovery": {"tokens": 0}}).recovery.tokens == 0
    with pytest.raises(SpecError, match="recovery.steps: unknown key"):
        parse_spec({**base, "recovery": {"steps": 3}})
