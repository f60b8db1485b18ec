"""prune(): the config and the unit source decide exactly what is kept."""

from __future__ import annotations

import pytest
import torch

from prunesearch import Config
from prunesearch.errors import ConfigError
from prunesearch.prune import UnitChoice, arch_of, prune
from prunesearch.space import adapter_for
from tests.space.tiny import FAMILIES, FFN_STEP, configs


class Fixed:
    """A unit source that keeps the *last* units (not what magnitude would pick)."""

    def __init__(self, model):
        self.adapter = adapter_for(model)
        self.space = self.adapter.space(ffn_step=FFN_STEP)

    def choice(self, layer, kind, size):
        n = self.adapter.n_units(kind)
        return UnitChoice(keep=torch.arange(n - size, n))


def test_units_come_from_the_source():
    model = FAMILIES["llama"].model()
    pruned = prune(model, Config.uniform(3, heads=3, ffn=16), Fixed(model))
    layer = arch_of(pruned)["layers"][0]
    assert layer["attn_units"] == [3, 4, 5] and layer["ffn_units"] == list(range(48, 64))
    # the kept KV group is the second one: its k_proj rows are the dense rows 8..15
    dense_k = model.model.layers[0].self_attn.k_proj.weight
    assert torch.equal(pruned.model.layers[0].self_attn.k_proj.weight, dense_k[8:16])


def test_config_is_validated_against_the_source_space():
    model = FAMILIES["gpt2"].model()
    with pytest.raises(ConfigError, match="layer 0: ffn=20 is off the grid"):
        prune(model, Config.uniform(3, heads=4, ffn=20), ffn_step=FFN_STEP)
    with pytest.raises(ConfigError, match="layer 1: ffn=16 is off the grid.*allowed: 0, 32, 64"):
        prune(
            model,
            Config.from_dict(
                {"layers": [{"heads": 4, "ffn": 32}, {"heads": 4, "ffn": 16}] + [{"heads": 4, "ffn": 64}]}
            ),
            ffn_step=32,
        )
    with pytest.raises(ConfigError, match="ffn_step 128 exceeds the FFN width 64"):
        prune(model, Config.uniform(3, heads=4, ffn=64))


def test_gqa_source_must_keep_whole_groups():
    model = FAMILIES["llama"].model()

    class Split(Fixed):
        def choice(self, layer, kind, size):
            if kind == "attn" and size == 3:
                return UnitChoice(keep=torch.tensor([1, 2, 3]))  # straddles both groups
            return super().choice(layer, kind, size)

    with pytest.raises(ConfigError, match="whole KV groups of 3"):
        prune(model, Config.uniform(3, heads=3, ffn=64), Split(model))


def test_arch_record_and_dense_copy():
    model = FAMILIES["bert"].model()
    dense = prune(model, configs(model)["dense"], ffn_step=FFN_STEP)
    assert arch_of(model) is None
    arch = arch_of(dense)
    assert arch["family"] == "bert" and arch["dense"]["num_hidden_layers"] == 3
    assert all(l["attn_units"] == [0, 1, 2, 3] and len(l["ffn_units"]) == 64 for l in arch["layers"])
    assert dense is not model
