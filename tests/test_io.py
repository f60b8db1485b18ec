"""io.save / io.load: a pruned model rebuilds from its folder alone."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from prunesearch import _io as io
from prunesearch import load_model
from prunesearch.errors import ModelNotFoundError
from prunesearch.prune import arch_of, prune
from prunesearch.space import ADAPTERS
from prunesearch.standalone import modeling_pruned
from tests.space.tiny import CASES, DECODERS, FAMILIES, FFN_STEP, VIT_SHAPE, configs


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


def test_weights_that_do_not_match_the_config(tmp_path):
    model = FAMILIES["vit"].model()
    io.save(prune(model, configs(model)["mixed"], ffn_step=FFN_STEP), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["layer_sizes"][1]["ffn"] -= FFN_STEP  # layer 0 was dropped: dense layer 2 is the second one
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ModelNotFoundError, match=r"does not match config.json's layer_sizes: size mismatch for layers.1.mlp.fc1.weight"
    ):
        io.load(tmp_path)


def test_an_older_export_is_refused_with_the_fix(tmp_path):
    model = FAMILIES["bert"].model()
    io.save(prune(model, configs(model)["mixed"], ffn_step=FFN_STEP), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["layer_sizes"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelNotFoundError, match="older prunesearch.*export it again"):
        io.load(tmp_path)


def test_pruned_config_names_its_modelling_file(tmp_path):
    model = FAMILIES["llama"].model()
    pruned = prune(model, configs(model)["mixed"], ffn_step=FFN_STEP)  # (0,0) (3,16) (0,48): layer 0 dropped
    io.save(pruned, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "pruned_llama" and config["architectures"] == ["PrunedLlamaForCausalLM"]
    assert config["auto_map"] == {
        "AutoConfig": "modeling_pruned.PrunedLlamaConfig",
        "AutoModel": "modeling_pruned.PrunedLlamaModel",
        "AutoModelForCausalLM": "modeling_pruned.PrunedLlamaForCausalLM",
    }
    assert config["layer_sizes"] == [{"layer": 1, "heads": 3, "ffn": 16}, {"layer": 2, "heads": 0, "ffn": 48}]
    assert config["num_hidden_layers"] == 2 and config["dense_layers"]["num_hidden_layers"] == 3
    shipped = (tmp_path / io.MODELING_FILE).read_text()
    assert shipped == Path(modeling_pruned.__file__).read_text()


def test_the_modelling_file_imports_only_torch_and_transformers():
    tree = ast.parse(Path(modeling_pruned.__file__).read_text())
    roots = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    roots |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert roots <= {"__future__", "contextlib", "torch", "transformers"}


def test_the_modelling_file_knows_every_adapter_family():
    for adapter in ADAPTERS.values():
        assert modeling_pruned.FAMILIES[adapter.family][1] == adapter.model_types


def test_dense_indices_of_kept_empty_layers():
    record = [{"heads": h, "ffn": f} for h, f in [(0, 0), (2, 0), (0, 0), (0, 0), (1, 1)]]
    sizes = [{"heads": h, "ffn": f} for h, f in [(2, 0), (0, 0), (1, 1)]]
    assert io.dense_indices(record, sizes) == [1, 2, 4]  # one empty layer kept: which one computes alike
    with pytest.raises(ModelNotFoundError, match="do not follow its pruning record"):
        io.dense_indices(record, [{"heads": 1, "ffn": 1}, {"heads": 2, "ffn": 0}])


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


@pytest.mark.parametrize(("family", "name"), [c for c in CASES if c[1] in ("mixed", "mixed_tail", "empty")])
def test_transformers_loads_the_folder_with_its_own_code(family, name, tmp_path):
    from transformers import AutoModel, AutoModelForCausalLM

    model = FAMILIES[family].model()
    pruned = prune(model, configs(model)[name], ffn_step=FFN_STEP)
    io.save(pruned, tmp_path)
    auto = AutoModelForCausalLM if family in DECODERS else AutoModel
    remote = auto.from_pretrained(tmp_path, trust_remote_code=True).eval()
    assert type(remote).__name__ == "Pruned" + type(pruned).__name__
    assert "prunesearch" not in type(remote).__module__  # transformers' copy of the folder's file
    batch = FAMILIES[family].inputs(torch.Generator().manual_seed(0))
    output = FAMILIES[family].output
    with torch.no_grad():
        torch.testing.assert_close(getattr(remote(**batch), output), getattr(pruned(**batch), output), atol=0, rtol=0)
    if family in DECODERS:
        ids = batch["input_ids"][:1]
        kw = dict(max_new_tokens=5, do_sample=False, pad_token_id=0)
        assert torch.equal(remote.generate(ids, **kw), pruned.generate(ids, **kw))
