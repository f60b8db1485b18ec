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
