import sys

import pytest
import torch

from prunesearch.prune._reconstruct import Gram


def _problem(bias: bool):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2000, 12, generator=g) + 0.5
    w = torch.randn(6, 12, generator=g)
    t = z @ w.T + (torch.randn(6, generator=g) if bias else 0.0)
    return z, w, t


def test_full_columns_recover_the_true_map():
    for bias in (True, False):
        z, w, t = _problem(bias)
        fit, b = Gram(z, t).solve(torch.arange(12), bias=bias, damp=1e-8)
        assert torch.allclose(fit, w, atol=1e-3)
        assert (b is not None) == bias


def test_refit_of_kept_columns_beats_slicing_the_dense_weights():
    z, w, t = _problem(True)
    z[:, 6:] = z[:, :6] * 0.8 + 0.2 * z[:, 6:]  # dropped columns correlate with kept ones: refit can absorb them
    t = z @ w.T
    keep = torch.arange(6)
    fit, b = Gram(z, t).solve(keep, bias=True)
    refit_err = (z[:, keep] @ fit.T + b - t).pow(2).mean()
    sliced_err = (z[:, keep] @ w[:, keep].T - t).pow(2).mean()
    assert refit_err < 0.5 * sliced_err
    assert torch.allclose(Gram(z, t).mean_target(), t.mean(0), atol=1e-5)


def test_a_column_the_data_never_excites_keeps_its_prior_weight():
    z, w, t = _problem(False)
    z[:, 3] = 0.0  # silent in calibration: the data says nothing about its weight
    t = z @ w.T
    prior = w + 0.1
    fit, _ = Gram(z, t).solve(torch.arange(12), bias=False, prior=prior)
    assert torch.allclose(fit[:, 3], prior[:, 3], atol=1e-4)  # pulled to the prior, not to zero
    unpulled, _ = Gram(z, t).solve(torch.arange(12), bias=False)
    assert unpulled[:, 3].abs().max() < 1e-4
    keep = torch.tensor([0, 1, 2, 4, 5])
    assert torch.allclose(fit[:, keep], w[:, keep], atol=5e-2)  # excited columns still fit the data


def test_a_gram_grown_batch_by_batch_equals_one_built_at_once_and_reports_its_error():
    z, w, t = _problem(True)
    whole = Gram(z, t)
    grown = Gram(z[:700], t[:700]).add(z[700:1500], t[700:1500]).add(z[1500:], t[1500:])
    assert torch.allclose(whole.zz, grown.zz, rtol=1e-5, atol=1e-2) and torch.allclose(whole.zt, grown.zt, atol=1e-2)
    fit, b = grown.solve(torch.arange(12), bias=True, damp=1e-6)
    assert grown.error(fit, b) < 1e-6  # the true map explains t
    other = w + 0.3
    direct = (z @ other.T - t).pow(2).sum() / (t - t.mean(0)).pow(2).sum()
    assert grown.error(other, None) == pytest.approx(float(direct), rel=1e-4)
    assert grown.error(None, None) == pytest.approx(
        1.0 + float(t.mean(0).pow(2).sum() * len(t)) / float((t - t.mean(0)).pow(2).sum()), rel=1e-4
    )  # a block removed without a bias outputs zeros


def test_sequential_refit_brings_every_family_closer_to_the_dense_model():
    from prunesearch.prune import LevelDatabase, prune
    from prunesearch.prune._reconstruct import refit_sequentially
    from prunesearch.space import adapter_for
    from tests.space.tiny import FAMILIES, FFN_STEP, configs

    class Rows:  # the level database's calibration: tiny random-token batches
        def __init__(self, batch):
            self.batch, self.fingerprint = batch, "tiny"

        def calib(self, n_tokens):
            return self.batch

    g = torch.Generator().manual_seed(0)
    for family in ("bert", "llama", "gpt2"):
        teacher = FAMILIES[family].model()
        batches = [FAMILIES[family].inputs(g) for _ in range(6)]
        for b in batches:
            b["input_ids"] = torch.randint(3, 97, (8, 12), generator=g)
            b["attention_mask"] = torch.ones(8, 12, dtype=torch.long)
        batches[0]["attention_mask"][1, -4:] = 0  # padding is never fitted on
        space = adapter_for(teacher).space(ffn_step=FFN_STEP)
        database = LevelDatabase.build(_Loaded(teacher), Rows(batches[1]), space=space, cache=False, n_tokens=96)
        for name in ("mixed", "mixed_tail"):
            config = configs(teacher)[name]
            student = prune(teacher, config, database)
            before = _distance(student, teacher, batches, decoder=family != "bert")
            result = refit_sequentially(student, teacher, batches, damp=1e-3)
            assert all(a <= b + 1e-6 for a, b in zip(result.error_after, result.error_before)), (family, name)
            assert _distance(student, teacher, batches, decoder=family != "bert") < before, (family, name)


class _Loaded:
    def __init__(self, model):
        self.model, self.name, self.weights_hash = model, "tiny", "tiny"


@torch.no_grad()
def _distance(student, teacher, batches, *, decoder: bool) -> float:
    out = []
    for b in batches:
        extra = {"use_cache": False} if decoder else {}
        s = student.base_model(**b, **extra).last_hidden_state
        t = teacher.base_model(**b, **extra).last_hidden_state
        out.append((s - t).pow(2).sum(-1)[b["attention_mask"].bool()])
    return float(torch.cat(out).mean())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps and madvise: Linux")
def test_the_refit_leaves_the_dense_models_mapped_weights_handed_back(tmp_path):
    """A dense model loaded from safetensors is a file mapping: the refit reads each layer once, then hands its
    pages back, so the whole dense model is never resident beside the student and the refit's own tensors."""
    import copy

    from prunesearch.prune._reconstruct import refit_sequentially
    from tests.prune.mapped import mapped_llama, resident_kb

    teacher, file = mapped_llama(tmp_path)
    student = copy.deepcopy(teacher)
    g = torch.Generator().manual_seed(0)
    batches = [{"input_ids": torch.randint(3, 97, (4, 16), generator=g)} for _ in range(2)]
    for b in batches:
        b["attention_mask"] = torch.ones_like(b["input_ids"])
    size_kb = file.stat().st_size // 1024
    assert resident_kb(file) > 0.9 * size_kb
    refit_sequentially(student, teacher, batches)
    assert resident_kb(file) < 0.1 * size_kb
