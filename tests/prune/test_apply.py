"""prune(): the config and the unit source decide exactly what is kept."""

from __future__ import annotations

import sys

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


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_pruned_copy_owns_its_tensors_and_leaves_the_dense_model_as_it_was(family):
    """prune() starts from a copy over the dense tensors (no full copy of the weights): whatever it keeps, and
    whatever finalize() writes into (a dropped layer's bias folded downstream), must be its own."""
    model = FAMILIES[family].model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dense_memory = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    for name, config in configs(model).items():
        pruned = prune(model, config, ffn_step=FFN_STEP)
        shared = [k for k, t in pruned.state_dict().items() if t.untyped_storage().data_ptr() in dense_memory]
        assert not shared, (name, shared)
        with torch.no_grad():
            for p in pruned.parameters():
                p.add_(1.0)
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), name
    tied = prune(model, configs(model)["mixed"], ffn_step=FFN_STEP)
    head = tied.get_output_embeddings() if hasattr(tied, "get_output_embeddings") else None
    if head is not None and model.config.tie_word_embeddings:
        assert head.weight is tied.get_input_embeddings().weight


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps and madvise: Linux")
def test_pruning_a_mapped_model_hands_its_pages_back_and_copies_none_whole(tmp_path):
    """A dense model loaded from safetensors is read layer by layer as it is sliced, and each layer's pages are
    handed back after: the pruned copy equals one pruned from an in-memory copy of the model."""
    import copy

    from tests.prune.mapped import mapped_llama, resident_kb

    model, file = mapped_llama(tmp_path)
    in_memory = copy.deepcopy(model)
    size_kb = file.stat().st_size // 1024
    assert resident_kb(file) > 0.9 * size_kb
    space = adapter_for(model).space()
    # the dense config slices nothing: every tensor is copied whole from the dense one, and handed back after
    for config in (space.uniform_config(heads=4, ffn=512), space.dense()):
        for p in model.parameters():
            p.sum()  # all resident again
        pruned = prune(model, config)
        assert resident_kb(file) < 0.2 * size_kb
        expected = prune(in_memory, config)
        assert all(torch.equal(a, b) for a, b in zip(pruned.state_dict().values(), expected.state_dict().values()))
