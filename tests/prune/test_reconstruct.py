import torch

from prunesearch.prune.reconstruct import Gram


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
