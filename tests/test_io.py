"""io.save / io.load: a pruned model rebuilds from its folder alone."""

from __future__ import annotations

import json

import pytest
import torch

from prunesearch import io
from prunesearch.errors import ModelNotFoundError
from prunesearch.models import load_model
from prunesearch.prune.apply import arch_of, prune
from tests.space.tiny import FAMILIES, FFN_STEP, VIT_SHAPE, configs


def test_folder_contents_and_arch_record(tmp_path):
    model = FAMILIES["llama"].model()
    config = configs(model)["mixed"]
    pruned = prune(model, config, ffn_step=FFN_STEP)
    io.save(pruned, tmp_path)
    assert {"model.safetensors", "config.json", "arch.json"} <= {f.name for f in tmp_path.iterdir()}
    arch = json.loads((tmp_path / "arch.json").read_text())
    assert arch["family"] == "llama" and arch["dense"]["num_hidden_layers"] == 3
    assert [(l["heads"], l["ffn"]) for l in arch["layers"]] == [(l.heads, l.ffn) for l in config.layers]
    assert [len(l["attn_units"]) for l in arch["layers"]] == config.heads
    assert "prunesearch_arch" not in json.loads((tmp_path / "config.json").read_text())
    assert arch_of(pruned) == arch  # saving leaves the record on the model
    assert arch_of(io.load(tmp_path)) == arch


def test_dense_round_trip(tmp_path):
    model = FAMILIES["bert"].model()
    io.save(model, tmp_path)
    assert json.loads((tmp_path / "arch.json").read_text())["dense"] is True
    batch = FAMILIES["bert"].inputs(torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(io.load(tmp_path)(**batch).last_hidden_state, model(**batch).last_hidden_state)


def test_load_model_reads_a_pruned_export(tmp_path):
    model = FAMILIES["gpt2"].model()
    pruned = prune(model, configs(model)["mixed_tail"], ffn_step=FFN_STEP)
    io.save(pruned, tmp_path)
    loaded = load_model(str(tmp_path))
    assert loaded.is_decoder and arch_of(loaded.model) is not None
    ids = torch.randint(3, 90, (1, 7))
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, pruned(ids).logits)


def test_missing_or_mismatched_folder(tmp_path):
    with pytest.raises(ModelNotFoundError, match="config.json missing"):
        io.load(tmp_path)
    model = FAMILIES["vit"].model()
    io.save(prune(model, configs(model)["mixed"], ffn_step=FFN_STEP), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match="no model.safetensors"):
        io.load(tmp_path)


def test_weights_that_do_not_match_the_arch(tmp_path):
    model = FAMILIES["vit"].model()
    io.save(prune(model, configs(model)["mixed"], ffn_step=FFN_STEP), tmp_path)
    arch = json.loads((tmp_path / "arch.json").read_text())
    arch["layers"][1]["ffn_units"] = arch["layers"][1]["ffn_units"][:-1]
    (tmp_path / "arch.json").write_text(json.dumps(arch))
    with pytest.raises(
        ModelNotFoundError, match=r"does not match arch.json: size mismatch for layers.0.mlp.fc1.weight"
    ):  # layer 0 was dropped
        io.load(tmp_path)


def test_task_heads_round_trip(tmp_path):
    from transformers import ViTConfig, ViTForImageClassification

    model = ViTForImageClassification(ViTConfig(**VIT_SHAPE, num_labels=3)).eval()
    pruned = prune(model, configs(model)["mixed"], ffn_step=FFN_STEP)
    io.save(pruned, tmp_path)
    loaded = io.load(tmp_path)
    assert type(loaded) is ViTForImageClassification
    pixels = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(pixels).logits, pruned(pixels).logits)
