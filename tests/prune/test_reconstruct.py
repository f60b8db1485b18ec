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
