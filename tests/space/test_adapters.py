"""Every adapter on a tiny model: slicing is exact, sizes are analytic, saves reload."""

from __future__ import annotations

import pytest
import torch

from prunesearch import _io as io
from prunesearch.errors import ConfigError, ModelNotFoundError
from prunesearch.prune import UnitChoice, masked, prune
from prunesearch.space import adapter_for
from prunesearch.space._modules import BiasOnly
from tests.space.tiny import CASES, DECODERS, FAMILIES, FFN_STEP, configs

_MODELS: dict = {}


def tiny(family: str):
    if family not in _MODELS:
        _MODELS[family] = FAMILIES[family].model()
    return _MODELS[family]


def outputs(family: str, model) -> torch.Tensor:
    batch = FAMILIES[family].inputs(torch.Generator().manual_seed(2))
    with torch.no_grad():
        return getattr(model(**batch), FAMILIES[family].output)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("family", "name"), CASES)
def test_sliced_equals_masked_and_count_is_analytic(family, name):
    model = tiny(family)
    config = configs(model)[name]
    pruned = prune(model, config, ffn_step=FFN_STEP)
    reference = masked(model, config, ffn_step=FFN_STEP)
    torch.testing.assert_close(outputs(family, pruned), outputs(family, reference), atol=1e-5, rtol=0)
    assert adapter_for(model).param_count(config) == n_params(pruned)
    if name != "dense":
        assert n_params(pruned) < n_params(model)
    if name == "empty" and family != "bert":  # pre-LN: empty layers are dropped, not kept
        assert pruned.config.num_hidden_layers == 0


@pytest.mark.parametrize(("family", "name"), CASES)
def test_save_load_round_trip(family, name, tmp_path):
    model = tiny(family)
    pruned = prune(model, configs(model)[name], ffn_step=FFN_STEP)
    io.save(pruned, tmp_path)
    loaded = io.load(tmp_path)
    assert n_params(loaded) == n_params(pruned)
    torch.testing.assert_close(outputs(family, loaded), outputs(family, pruned), atol=0, rtol=0)


def generate(model, batch, *, use_cache: bool):
    out = model.generate(
        **batch,
        max_new_tokens=6,
        do_sample=False,
        use_cache=use_cache,
        return_dict_in_generate=True,
        output_logits=True,
    )
    return out.sequences, torch.stack(out.logits)


@pytest.mark.parametrize(("family", "name"), [c for c in CASES if c[0] in DECODERS])
def test_decoder_generates_with_kv_cache(family, name, tmp_path):
    model = tiny(family)
    config = configs(model)[name]
    pruned = prune(model, config, ffn_step=FFN_STEP)
    batch = FAMILIES[family].inputs(torch.Generator().manual_seed(3))
    seq_cache, logits_cache = generate(pruned, batch, use_cache=True)
    seq_plain, logits_plain = generate(pruned, batch, use_cache=False)
    seq_masked, logits_masked = generate(masked(model, config, ffn_step=FFN_STEP), batch, use_cache=True)
    assert torch.equal(seq_cache, seq_plain) and torch.equal(seq_cache, seq_masked)
    torch.testing.assert_close(logits_cache, logits_plain, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits_cache, logits_masked, atol=1e-5, rtol=0)
    # the reloaded model decodes the same way: its layer_idx are renumbered too
    io.save(pruned, tmp_path)
    assert torch.equal(generate(io.load(tmp_path), batch, use_cache=True)[0], seq_cache)


def test_kv_cache_slots_are_renumbered():
    model = tiny("llama")
    pruned = prune(model, configs(model)["mixed"], ffn_step=FFN_STEP)  # layer 0 dropped, layer 2 attn gone
    attns = [b.self_attn for b in pruned.model.layers]
    assert [getattr(a, "layer_idx", None) for a in attns] == [0, None]
    assert isinstance(attns[1], BiasOnly)


class Reconstructed:
    """A unit source that hands back a changed output projection at every size."""

    def __init__(self, model):
        self.adapter = adapter_for(model)
        self.space = self.adapter.space(ffn_step=FFN_STEP)

    def choice(self, layer, kind, size):
        keep = torch.arange(size)
        cols = self.adapter.columns(kind, keep)
        weight = self.adapter.output_weight(layer, kind).detach()[:, cols] * 1.5
        bias = self.adapter.output_bias(layer, kind).detach() + 0.25
        return UnitChoice(keep=keep, weight=weight, bias=bias)


@pytest.mark.parametrize("name", ["dense", "mixed"])
def test_reconstructed_weights_are_used_and_reload(name, tmp_path):
    # GPT-2 keeps full-width projections as Conv1D (stored transposed): the
    # replacement must be written in place so that io.load rebuilds the same type
    model = tiny("gpt2")
    config = configs(model)[name]
    plain = prune(model, config, ffn_step=FFN_STEP)
    rebuilt = prune(model, config, Reconstructed(model))
    assert not torch.allclose(outputs("gpt2", rebuilt), outputs("gpt2", plain))
    assert adapter_for(model).param_count(config) == n_params(rebuilt)
    io.save(rebuilt, tmp_path)
    torch.testing.assert_close(outputs("gpt2", io.load(tmp_path)), outputs("gpt2", rebuilt), atol=0, rtol=0)


def test_original_model_is_untouched():
    model = tiny("vit")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prune(model, configs(model)["mixed"], ffn_step=FFN_STEP)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_gqa_space_moves_whole_groups():
    adapter = adapter_for(tiny("llama"))
    space = adapter.space(ffn_step=FFN_STEP)
    assert adapter.heads_per_group == 3 and space.layers[0].heads == (0, 3, 6)
    with pytest.raises(ConfigError, match="whole KV groups"):
        adapter.check_units("attn", torch.tensor([0, 1, 3]))


def test_param_count_rejects_impossible_sizes():
    model = tiny("llama")
    adapter = adapter_for(model)
    bad = configs(model)["dense"].model_copy(update={"layers": configs(model)["dense"].layers[:2]})
    with pytest.raises(ConfigError, match="3"):
        adapter.param_count(bad)


def test_unknown_model_type():
    from transformers import T5Config, T5Model

    model = T5Model(T5Config(vocab_size=32, d_model=16, d_kv=4, d_ff=16, num_layers=1, num_heads=2))
    with pytest.raises(ModelNotFoundError, match="no pruning adapter for model_type 't5'"):
        adapter_for(model)


def _variant(name):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from tests.space.tiny import GPT2_SHAPE, LLAMA_SHAPE, Family

    build = {
        # attention scaled by 1/(layer_idx+1), fixed at build time: renumbering must not change it
        "gpt2_inverse_idx": lambda: GPT2LMHeadModel(
            GPT2Config(**GPT2_SHAPE, scale_attn_by_inverse_layer_idx=True, reorder_and_upcast_attn=True)
        ),
        # biased o_proj, bias-free MLP and no position embeddings: an empty layer adds a
        # constant with nowhere to fold it, so it is kept
        "llama_attn_bias": lambda: LlamaForCausalLM(
            LlamaConfig(**LLAMA_SHAPE, attention_bias=True, tie_word_embeddings=False)
        ),
        "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(**LLAMA_SHAPE)),
    }[name]
    return Family(name, build, lambda g: FAMILIES["llama"].inputs(g), "logits")


@pytest.mark.parametrize("variant", ["gpt2_inverse_idx", "llama_attn_bias", "qwen2"])
def test_decoder_variants(variant, tmp_path):
    family = _variant(variant)
    model = family.model()
    batch = family.inputs(torch.Generator().manual_seed(4))
    for name, config in configs(model).items():
        pruned = prune(model, config, ffn_step=FFN_STEP)
        reference = masked(model, config, ffn_step=FFN_STEP)
        with torch.no_grad():
            got = pruned(**batch).logits
            torch.testing.assert_close(got, reference(**batch).logits, atol=1e-5, rtol=0)
        assert adapter_for(model).param_count(config) == n_params(pruned), name
        seq, logits = generate(pruned, batch, use_cache=True)
        torch.testing.assert_close(logits, generate(pruned, batch, use_cache=False)[1], atol=1e-5, rtol=0)
        torch.testing.assert_close(logits, generate(reference, batch, use_cache=True)[1], atol=1e-5, rtol=0)
        io.save(pruned, tmp_path / name)
        with torch.no_grad():
            assert torch.equal(io.load(tmp_path / name)(**batch).logits, got), name
    if variant == "llama_attn_bias":
        assert prune(model, configs(model)["empty"], ffn_step=FFN_STEP).config.num_hidden_layers == 3
