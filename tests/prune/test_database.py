import importlib

import numpy as np
import pytest
import torch

from prunesearch import LoadedModel
from prunesearch.prune import LevelDatabase, prune
from prunesearch.prune._reconstruct import Gram
from prunesearch.space import adapter_for
from tests.space.tiny import FAMILIES, FFN_STEP


class TokenCalibration:
    """Random-token calibration for tiny models (the real text loader needs a tokenizer)."""

    fingerprint = "tiny"

    def __init__(self, vocab: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(3, vocab, (64, 16), generator=g)

    def calib(self, n_tokens: int) -> dict:
        ids = self.ids[: max(1, n_tokens // 16)]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _loaded(family: str) -> LoadedModel:
    model = FAMILIES[family].model()
    return LoadedModel(name=f"tiny-{family}", model=model, tokenizer=None, source=None, weights_hash=family)


def _error(model, reference, batch) -> float:
    with torch.no_grad():
        out = model(**batch)
        ref = reference(**batch)
    key = "logits" if hasattr(out, "logits") else "last_hidden_state"
    return (getattr(out, key) - getattr(ref, key)).pow(2).mean().item()


@pytest.mark.parametrize("family", ["bert", "llama", "gpt2"])
def test_reconstruction_lowers_error_and_dense_stays_exact(family, tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNESEARCH_CACHE", str(tmp_path))
    loaded = _loaded(family)
    space = adapter_for(loaded.model).space(ffn_step=FFN_STEP)
    calib = TokenCalibration(loaded.model.config.vocab_size)
    kw = dict(space=space, n_tokens=1024, streams=2)
    plain = LevelDatabase.build(loaded, calib, reconstruct=False, **kw)
    fitted = LevelDatabase.build(loaded, calib, **kw)
    batch = calib.calib(1024)
    config = space.from_genome(space.genome_upper // 2)
    assert _error(prune(loaded.model, config, fitted), loaded.model, batch) < _error(
        prune(loaded.model, config, plain), loaded.model, batch
    )
    assert _error(prune(loaded.model, space.dense(), fitted), loaded.model, batch) == 0.0


def test_database_is_cached_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNESEARCH_CACHE", str(tmp_path))
    loaded = _loaded("bert")
    space = adapter_for(loaded.model).space(ffn_step=FFN_STEP)
    calib = TokenCalibration(loaded.model.config.vocab_size)
    first = LevelDatabase.build(loaded, calib, space=space, n_tokens=512, streams=2)
    assert sorted(p.name for p in first.path.iterdir()) == [
        *(f"layer-{i:03d}.safetensors" for i in range(space.n_layers)),
        "ranking.safetensors",
    ]
    uncached = LevelDatabase.build(loaded, calib, space=space, n_tokens=512, streams=2, cache=False)
    # prunesearch.prune is also the top-level function, so reach the module through importlib
    database = importlib.import_module("prunesearch.prune._database")
    monkeypatch.setattr(database, "_Builder", None)  # a rebuild would fail: the cache must answer
    again = LevelDatabase.build(loaded, calib, space=space, n_tokens=512, streams=2)
    assert again.key == first.key and again.path == first.path
    _assert_same_levels(again, uncached)  # read lazily from disk = held in memory


def _assert_same_levels(a: LevelDatabase, b: LevelDatabase) -> None:
    for layer, grids in enumerate(a.space.layers):
        for kind, grid in (("attn", grids.heads), ("ffn", grids.ffn)):
            for size in grid:
                x, y = a.choice(layer, kind, size), b.choice(layer, kind, size)
                assert torch.equal(x.keep, y.keep)
                for u, v in ((x.weight, y.weight), (x.bias, y.bias)):
                    assert (u is None and v is None) or torch.equal(u, v)


def test_gram_solves_an_exact_linear_map():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2000, 6, generator=g)
    w = torch.randn(3, 6, generator=g)
    t = z @ w.T + torch.tensor([1.0, -2.0, 0.5])
    weight, bias = Gram(z, t).solve(torch.tensor([0, 1, 2, 3, 4, 5]), bias=True, damp=1e-9)
    assert torch.allclose(weight, w, atol=1e-4) and torch.allclose(bias, torch.tensor([1.0, -2.0, 0.5]), atol=1e-4)


@pytest.mark.parametrize("family", ["bert", "llama"])  # llama: GQA heads move in whole KV groups
def test_group_importance_follows_the_ranking_one_share_per_level_step(family, tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNESEARCH_CACHE", str(tmp_path))
    loaded = _loaded(family)
    space = adapter_for(loaded.model).space(ffn_step=FFN_STEP)
    database = LevelDatabase.build(
        loaded, TokenCalibration(loaded.model.config.vocab_size), space=space, n_tokens=512, reconstruct=False
    )
    shares = database.group_importance()
    assert [len(s) for s in shares] == list(space.genome_upper)
    for s in shares:
        assert s.sum() == pytest.approx(1.0) and (s >= 0).all()
        assert (np.diff(s) <= 1e-9).all()  # a level adds the next-best units


def test_a_build_hands_back_each_mapped_layer_once_fitted(tmp_path, monkeypatch):
    """Weights loaded from safetensors become resident as they are read: a build hands each layer's pages back
    once its levels are fitted, and fits the same levels as from an in-memory copy."""
    import copy

    from tests.prune.mapped import mapped_llama, resident_kb

    monkeypatch.setenv("PRUNESEARCH_CACHE", str(tmp_path / "cache"))
    model, file = mapped_llama(tmp_path / "model")
    in_memory = copy.deepcopy(model)
    layers_kb = sum(p.numel() * p.element_size() for p in adapter_for(model).layers().parameters()) // 1024
    calib = TokenCalibration(model.config.vocab_size)
    space = adapter_for(model).space(ffn_step=128)
    built = []
    for weights in (model, in_memory):
        loaded = LoadedModel(name="mapped", model=weights, tokenizer=None, source=None, weights_hash="m")
        built.append(LevelDatabase.build(loaded, calib, space=space, n_tokens=256, cache=False))
    assert resident_kb(file) < file.stat().st_size // 1024 - 0.8 * layers_kb
    _assert_same_levels(*built)
