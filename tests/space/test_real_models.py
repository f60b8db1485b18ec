"""The adapters on the packaged real models (slow: loads MiniLM and SmolLM2-135M)."""

from __future__ import annotations

import pytest
import torch

from prunesearch import Config, LayerConfig, load_model
from prunesearch import _io as io
from prunesearch.prune import masked, prune
from prunesearch.space import adapter_for

pytestmark = pytest.mark.slow

SENTENCES = [
    "Structured pruning removes whole attention heads and FFN channels.",
    "The cat sat on the mat.",
    "A latency table predicts how long each layer takes on this device.",
]
PROMPT = "The capital of France is"


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def mixed(space, n_layers: int) -> Config:
    """Layer i cycles through: empty, no attention, no FFN, partial, dense."""
    h, f = space.layers[0].heads, space.layers[0].ffn
    cycle = [(0, 0), (0, f[len(f) // 2]), (h[len(h) // 2], 0), (h[1], f[1]), (h[-1], f[-1])]
    return Config(layers=tuple(LayerConfig(heads=a, ffn=b) for a, b in (cycle * n_layers)[:n_layers]))


@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm")


@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2")


@pytest.mark.parametrize("name", ["dense", "uniform_8_1024", "mixed"])
def test_minilm(minilm, name, tmp_path):
    model, adapter = minilm.model, adapter_for(minilm.model)
    space = adapter.space()
    config = {
        "dense": space.dense(),
        "uniform_8_1024": space.uniform_config(heads=8, ffn=1024),
        "mixed": mixed(space, adapter.n_layers),
    }[name]
    batch = minilm.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    pruned = prune(model, config)
    with torch.no_grad():
        got = pruned(**batch).last_hidden_state
        want = masked(model, config)(**batch).last_hidden_state
    # padding positions are excluded: their states feed nothing (mean pooling masks them),
    # and there even the dense fp32 model is ~6e-5 off its float64 self
    valid = batch["attention_mask"].bool()
    diff = (got - want)[valid].abs().max().item()
    print(f"minilm {name}: max |sliced - masked| = {diff:.2e} on real tokens, params {n_params(pruned)}")
    assert diff <= 1e-5
    assert adapter.param_count(config) == n_params(pruned)
    io.save(pruned, tmp_path)
    with torch.no_grad():
        assert torch.equal(io.load(tmp_path)(**batch).last_hidden_state, got)


def smollm2_config(space, fraction: float) -> Config:
    """Prune ``fraction`` of query heads (rounded down to whole KV groups kept) and FFN width."""
    h, f = space.layers[0].heads, space.layers[0].ffn
    heads = max(x for x in h if x <= (1 - fraction) * h[-1])
    ffn = max(x for x in f if x <= (1 - fraction) * f[-1])
    return space.uniform_config(heads=heads, ffn=ffn)


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).abs().max() / want.abs().max()).item()


# fp32 logits over 30 layers: the sliced model sums the same products in another
# order (shorter matmuls), so it equals the masked one only to float rounding, and
# magnitude-pruned (unreconstructed) models amplify rounding. Measured on these three
# sentences (max |error| / max |logit|, real tokens) against a float64 run of the
# masked model: fp32 masked 2.7e-6 (dense), 9.7e-5 (6 heads/1152), 2.2e-5 (3/768);
# fp32 sliced 2.7e-6, 3.3e-5, 4.2e-5; sliced vs masked 0, 1.2e-4, 2.0e-5. So 5e-4 is a
# few times the fp32 floor, while a wrong head or channel moves logits by >1e-2.
SMOLLM2_RTOL = 5e-4


@pytest.mark.parametrize("name", ["dense", "prune25", "prune50", "mixed"])
def test_smollm2(smollm2, name, tmp_path):
    model, tok, adapter = smollm2.model, smollm2.tokenizer, adapter_for(smollm2.model)
    space = adapter.space()
    config = {
        "dense": space.dense(),
        "prune25": smollm2_config(space, 0.25),
        "prune50": smollm2_config(space, 0.50),
        "mixed": mixed(space, adapter.n_layers),
    }[name]
    pruned = prune(model, config)
    batch = tok(SENTENCES, padding=True, return_tensors="pt")
    valid = batch["attention_mask"].bool()
    with torch.no_grad():
        got = pruned(**batch).logits
        want = masked(model, config)(**batch).logits
    err = relative_error(got[valid], want[valid])
    count = n_params(pruned)
    assert adapter.param_count(config) == count
    assert err <= SMOLLM2_RTOL

    prompt = tok(PROMPT, return_tensors="pt")
    runs = {}
    for use_cache in (True, False):
        out = pruned.generate(
            **prompt,
            max_new_tokens=12,
            do_sample=False,
            use_cache=use_cache,
            return_dict_in_generate=True,
            output_logits=True,
            pad_token_id=tok.eos_token_id,
        )
        runs[use_cache] = (out.sequences, torch.stack(out.logits))
    text = tok.decode(runs[True][0][0, prompt["input_ids"].shape[1] :])
    cache_err = relative_error(runs[True][1], runs[False][1])
    print(
        f"smollm2 {name} ({config.layers[0].heads}/{config.layers[0].ffn}): params {count} "
        f"({count / n_params(model):.1%}), max|sliced-masked|/max|logit| {err:.1e}, "
        f"cache vs no-cache {cache_err:.1e}, layers {pruned.config.num_hidden_layers}, text {text!r}"
    )
    assert torch.equal(runs[True][0], runs[False][0])
    assert cache_err <= SMOLLM2_RTOL

    io.save(pruned, tmp_path)
    with torch.no_grad():
        assert torch.equal(io.load(tmp_path)(**batch).logits, got)
