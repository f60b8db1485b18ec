"""Least-squares refit of a block's output projection on calibration activations."""

from __future__ import annotations

import torch


class Gram:
    """Sufficient statistics of ``Z -> T`` regressions: every kept-column subset is solved from them."""

    def __init__(self, z: torch.Tensor, t: torch.Tensor) -> None:
        z = z.reshape(-1, z.shape[-1]).double()
        t = t.reshape(-1, t.shape[-1]).double()
        self.n = len(z)
        self.z_mean = z.mean(0)
        self.t_mean = t.mean(0)
        zc = z - self.z_mean
        self.zz = zc.T @ zc
        self.zt = zc.T @ (t - self.t_mean)

    def solve(
        self, cols: torch.Tensor, *, bias: bool, prior: torch.Tensor | None = None, damp: float = 1e-2
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Ridge solution (weight ``out × len(cols)``, bias) for the kept input columns.

        ``damp`` scales the ridge by the mean diagonal, so it is invariant to activation scale.
        The ridge pulls towards ``prior`` (the dense weight's kept columns, ``out × len(cols)``)
        rather than towards zero: directions the calibration data barely excites keep their
        dense weights instead of growing large (a kept set of nearly collinear channels, fitted
        towards zero-damped weights, amplified rare tokens into garbage).
        Without a bias, the fit is through the origin (the projection has no offset to absorb means).
        """
        if not bias:
            zz = self.zz[cols][:, cols] + self.n * torch.outer(self.z_mean[cols], self.z_mean[cols])
            zt = self.zt[cols] + self.n * torch.outer(self.z_mean[cols], self.t_mean)
        else:
            zz, zt = self.zz[cols][:, cols], self.zt[cols]
        ridge = damp * zz.diagonal().mean().clamp_min(1e-12)
        if prior is not None:
            zt = zt + ridge * prior.T.to(zt.dtype)
        w = torch.linalg.solve(zz + ridge * torch.eye(len(cols), dtype=zz.dtype), zt)  # (cols, out)
        b = self.t_mean - self.z_mean[cols] @ w if bias else None
        return w.T.float().contiguous(), None if b is None else b.float()

    def mean_target(self) -> torch.Tensor:
        return self.t_mean.float()
