"""Config JSON and its validation against a model's search space: one-line ConfigErrors."""

from __future__ import annotations

import json

import pytest

from prunesearch import Config, load_model
from prunesearch.errors import ConfigError, ModelNotFoundError
from prunesearch.space import adapter_for
from tests.space.tiny import FAMILIES, FFN_STEP

LLAMA_SPACE = adapter_for(FAMILIES["llama"].model()).space(ffn_step=FFN_STEP)  # 3 layers, GQA 6 heads / 2 groups


def layers(*pairs):
    return {"layers": [{"heads": h, "ffn": f} for h, f in pairs]}


def check(data, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        LLAMA_SPACE.validate(Config.from_dict(data))
    assert "\n" not in str(info.value)


def test_round_trip_and_genome(tmp_path):
    config = Config.from_dict(layers((6, 64), (3, 16), (0, 0)))
    config.save(tmp_path / "c.json")
    assert Config.load(tmp_path / "c.json") == config
    assert json.loads((tmp_path / "c.json").read_text()) == config.to_dict()
    genome = LLAMA_SPACE.to_genome(config)
    assert genome.tolist() == [2, 4, 1, 1, 0, 0]
    assert LLAMA_SPACE.from_genome(genome) == config
    assert str(config) == "6/64 3/16 0/0"


def test_wrong_layer_count():
    check(layers((6, 64), (6, 64)), "config has 2 layers, the model has 3")


def test_too_many_heads_names_layer_and_allowed_values():
    check(layers((6, 64), (9, 64), (6, 64)), r"layer 1: heads=9 .*the model has 6.*allowed: 0, 3, 6")


def test_gqa_heads_must_be_whole_groups():
    check(layers((6, 64), (6, 64), (4, 64)), r"layer 2: heads=4 .*whole KV groups of 3.*allowed: 0, 3, 6")


def test_ffn_off_the_grid():
    check(layers((6, 40), (6, 64), (6, 64)), r"layer 0: ffn=40 is off the grid; allowed: 0, 16, 32, 48, 64")
    check(layers((6, 64), (6, 80), (6, 64)), r"layer 1: ffn=80 .*the model has 64")


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (layers((6, 64), (-3, 64), (6, 64)), r"layer 1: heads: Input should be greater than or equal to 0"),
        (layers((6, -16), (6, 64), (6, 64)), r"layer 0: ffn: Input should be greater than or equal to 0"),
        ({"layers": [{"heads": 6, "ffn": 64, "kv": 2}] * 3}, r"layer 0: kv: Extra inputs are not permitted"),
        ({"layers": [{"heads": 6}] * 3}, r"layer 0: ffn: Field required"),
        ({"layer": []}, r"config: layers: Field required"),
        ({"layers": [{"heads": "six", "ffn": 64}]}, r"layer 0: heads: Input should be a valid integer"),
    ],
)
def test_malformed_configs(data, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        Config.from_dict(data)
    assert "\n" not in str(info.value) and '{"layers"' in str(info.value)


def test_uniform_rejects_negative_sizes():
    with pytest.raises(ConfigError, match="layer 0: heads"):
        Config.uniform(3, heads=-1, ffn=64)


def test_malformed_json_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"layers": [{"heads": 6, "ffn": 64},]}')
    with pytest.raises(ConfigError, match=r"bad.json: not valid JSON \(.* at line 1\)"):
        Config.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.json"):
        Config.load(tmp_path / "nope.json")


def test_unknown_model_alias():
    with pytest.raises(ModelNotFoundError, match=r"unknown model 'no-such-model': use an alias \(minilm, smollm2\)"):
        load_model("no-such-model")
