"""Least-squares refits of output projections on calibration activations.

``Gram`` holds the sufficient statistics of a ``Z -> T`` regression, accumulated batch by batch, and
solves it for any subset of kept columns (the level database fits every level from one Gram).

``refit_sequentially`` is the error-correcting reconstruction of one pruned model: layer by layer,
in order, each surviving output projection (attention out, FFN down) is refitted on the PRUNED
model's own inputs to it, with the layers before it already refitted, against the DENSE model's
residual stream at that point. A level database fits each level on dense inputs (it cannot know the
layers around it); here each layer also corrects what the layers before it lost (Kwon et al. 2022's
layer-wise rescaling, and the local reconstruction that matches retraining with far less data).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from prunesearch._heap import released_file_pages
from prunesearch._reporter import QUIET, Reporter
from prunesearch.prune._layerwise import probed, record_calls, run_layer
from prunesearch.prune._precision import autocast
from prunesearch.space import KINDS, Kind, adapter_for
from prunesearch.space._modules import BiasOnly, linear_weight


class Gram:
    """Sufficient statistics of ``Z -> T`` regressions: every kept-column subset is solved from them.

    Built from a first batch and grown with ``add``; sums are float64, shifted by the first batch's
    means so that centring at the end loses no precision to large means."""

    def __init__(self, z: torch.Tensor, t: torch.Tensor) -> None:
        z, t = self._flat(z), self._flat(t)
        self.z_shift = z.mean(0) if len(z) else z.new_zeros(z.shape[1])
        self.t_shift = t.mean(0) if len(t) else t.new_zeros(t.shape[1])
        self.n = 0
        self.z_sum = torch.zeros(z.shape[1], dtype=torch.float64)
        self.t_sum = torch.zeros(t.shape[1], dtype=torch.float64)
        self.zz_sum = torch.zeros(z.shape[1], z.shape[1], dtype=torch.float64)
        self.zt_sum = torch.zeros(z.shape[1], t.shape[1], dtype=torch.float64)
        self.tt_sum = torch.zeros((), dtype=torch.float64)
        self.add(z, t)

    @staticmethod
    def _flat(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(math.prod(x.shape[:-1]), x.shape[-1]).float().cpu()

    def add(self, z: torch.Tensor, t: torch.Tensor) -> Gram:
        """Grow the statistics by the rows of another batch (products in fp32 per batch, sums in fp64)."""
        z, t = self._flat(z) - self.z_shift, self._flat(t) - self.t_shift
        self.n += len(z)
        self.z_sum += z.sum(0).double()
        self.t_sum += t.sum(0).double()
        self.zz_sum += (z.T @ z).double()
        self.zt_sum += (z.T @ t).double()
        self.tt_sum += t.double().pow(2).sum()
        return self

    @property
    def z_mean(self) -> torch.Tensor:
        return self.z_shift.double() + self.z_sum / self.n

    @property
    def t_mean(self) -> torch.Tensor:
        return self.t_shift.double() + self.t_sum / self.n

    @property
    def zz(self) -> torch.Tensor:
        """Centred ``Σ (z - z̄)(z - z̄)ᵀ``."""
        return self.zz_sum - torch.outer(self.z_sum, self.z_sum) / self.n

    @property
    def zt(self) -> torch.Tensor:
        return self.zt_sum - torch.outer(self.z_sum, self.t_sum) / self.n

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
        zz, zt = self.zz[cols][:, cols], self.zt[cols]
        if not bias:
            z_mean = self.z_mean[cols]
            zz = zz + self.n * torch.outer(z_mean, z_mean)
            zt = zt + self.n * torch.outer(z_mean, self.t_mean)
        ridge = damp * zz.diagonal().mean().clamp_min(1e-12)
        if prior is not None:
            zt = zt + ridge * prior.T.to(zt.dtype)
        w = torch.linalg.solve(zz + ridge * torch.eye(len(cols), dtype=zz.dtype), zt)  # (cols, out)
        b = self.t_mean - self.z_mean[cols] @ w if bias else None
        return w.T.float().contiguous(), None if b is None else b.float()

    def mean_target(self) -> torch.Tensor:
        return self.t_mean.float()

    def error(self, weight: torch.Tensor | None, bias: torch.Tensor | None) -> float:
        """Mean squared error per row of ``t ≈ weight·z + bias`` over every column of ``z``, relative to the
        mean square of ``t`` about its mean (a weight of None: the projection outputs its bias only)."""
        t_mean = self.t_mean
        spread = self.tt_sum - self.t_sum.pow(2).sum() / self.n  # Σ ‖t - t̄‖²
        offset = -t_mean + (0 if bias is None else bias.double().cpu())
        err = spread
        if weight is not None:
            w = weight.double().cpu()
            err = err + (w @ self.zz * w).sum() - 2 * (w * self.zt.T).sum()
            offset = offset + w @ self.z_mean
        err = err + self.n * offset.pow(2).sum()
        return float(err / spread.clamp_min(1e-30))


@dataclass
class RefitResult:
    """What ``refit_sequentially`` did: tokens fitted on, seconds, and per block (layer-major, attention then
    FFN) its fit error relative to the spread of its target, before and after the refit."""

    tokens: int
    seconds: float
    error_before: list[float] = field(default_factory=list)
    error_after: list[float] = field(default_factory=list)

    def describe(self) -> str:
        mean = lambda xs: sum(xs) / max(len(xs), 1)  # noqa: E731
        return (
            f"{self.tokens:,} tokens, {self.seconds:.0f} s; relative error of the blocks' outputs "
            f"{mean(self.error_before):.4f} -> {mean(self.error_after):.4f} (mean over blocks)"
        )


def dense_layer_of(student: nn.Module, teacher: nn.Module) -> list[int]:
    """For each layer of ``student`` (a pruned copy of ``teacher``), the teacher layer it was sliced from
    (pre-LN families drop layers whose blocks are all removed)."""
    from prunesearch._config import Config
    from prunesearch.prune._apply import arch_of

    record = arch_of(student)
    if record is None:
        return list(range(adapter_for(student).n_layers))
    config = Config.from_dict({"layers": [{"heads": l["heads"], "ffn": l["ffn"]} for l in record["layers"]]})
    return [i for i, dropped in enumerate(adapter_for(teacher).dropped_layers(config)) if not dropped]


def _refit(proj: nn.Module, gram: Gram, *, damp: float) -> tuple[float, float]:
    """Refit ``proj`` (a Linear, or a removed block's constant) in place; its error before and after."""
    if isinstance(proj, BiasOnly):
        if proj.bias is None:
            return (before := gram.error(None, None)), before
        before = gram.error(None, proj.bias)
        proj.bias.copy_(gram.mean_target().to(proj.bias))
        return before, gram.error(None, proj.bias)
    weight = linear_weight(proj)  # (out, in); a view of GPT-2's Conv1D (in, out), written through
    before = gram.error(weight, proj.bias)
    cols = torch.arange(weight.shape[1])
    w, b = gram.solve(cols, bias=proj.bias is not None, prior=weight.detach().double().cpu(), damp=damp)
    weight.copy_(w.to(weight))
    if b is not None:
        proj.bias.copy_(b.to(proj.bias))
    return before, gram.error(weight, proj.bias)


def _block_input(kind: Kind, proj: nn.Module, data: dict, mask: torch.Tensor) -> torch.Tensor:
    z = data[f"{kind}.z"][mask]
    return z[:, :0] if isinstance(proj, BiasOnly) else z  # a constant block has no inputs to weigh


@torch.no_grad()
def refit_sequentially(
    student: nn.Module,
    teacher: nn.Module,
    batches: list[dict[str, torch.Tensor]],
    *,
    damp: float = 1e-2,
    reporter: Reporter = QUIET,
) -> RefitResult:
    """Refit ``student``'s output projections in place, layer by layer (see the module docstring), on
    ``batches`` (padded token batches; padding is never fitted on). Passes run where the student is, in bf16
    where that device computes it natively; statistics and weights stay fp32 or wider.

    Per layer: the dense layer runs once (its targets kept for the layer), the student's layer three times
    (attention statistics; FFN statistics after the attention refit; its refitted output for the next layer).
    The dense model's weights mapped from a file are resident only while their layer runs (SmolLM2: 17 MB of
    513 MB): they are handed back before the first layer and after each (``_heap.released_file_pages``)."""
    started = time.monotonic()
    device = next(student.parameters()).device
    s_adapter, t_adapter = adapter_for(student), adapter_for(teacher)
    sources = dense_layer_of(student, teacher)
    teacher_layers = t_adapter.layers()
    batches = [{k: v.to(device) for k, v in b.items()} for b in batches]
    masks = [b["attention_mask"].bool() for b in batches]
    student.eval()
    teacher.eval()
    with autocast(device):
        calls = [record_calls(teacher, b) for b in batches]
        own = [record_calls(student, b).hidden for b in batches]
        dense = []
        for c in calls:  # past the leading layers the student dropped (their constant is in its embeddings)
            h = c.hidden
            for skipped in range(sources[0] if sources else 0):
                h = run_layer(teacher_layers[skipped], h, *c.calls[skipped])
            dense.append(h)
    released_file_pages(teacher)
    result = RefitResult(tokens=int(sum(m.sum() for m in masks)), seconds=0.0)
    t_layers, s_layers = teacher_layers, s_adapter.layers()
    with reporter.bar("reconstruct", "refitting layer by layer", total=len(sources)) as update:
        for j, t in enumerate(sources):
            following = sources[j + 1] if j + 1 < len(sources) else len(t_layers)
            grams: dict[Kind, Gram] = {}
            ffn_targets = []
            for m, (batch_calls, mask) in enumerate(zip(calls, masks)):
                args, kwargs = batch_calls.calls[t]
                with autocast(device):
                    d, dense[m] = probed(t_adapter, t, t_layers[t], dense[m], args, kwargs)
                    for skipped in range(t + 1, following):  # layers the student dropped (pre-LN)
                        dense[m] = run_layer(t_layers[skipped], dense[m], *batch_calls.calls[skipped])
                    # the dense stream where the student's FFN output lands: the layer's pre-norm sum, or,
                    # past dropped layers, the dense stream entering the next kept one
                    ffn_targets.append(d["ffn.r"] + d["ffn.y"] if following == t + 1 else dense[m])
                    p, _ = probed(s_adapter, j, s_layers[j], own[m], args, kwargs)
                _add(
                    grams,
                    "attn",
                    _block_input("attn", s_adapter.output_projection(j, "attn"), p, mask),
                    (d["attn.r"] + d["attn.y"] - p["attn.r"])[mask],
                )
            for kind in KINDS:
                if kind == "ffn":
                    for m, (batch_calls, mask) in enumerate(zip(calls, masks)):
                        with autocast(device):
                            p, _ = probed(s_adapter, j, s_layers[j], own[m], *batch_calls.calls[t])
                        proj = s_adapter.output_projection(j, "ffn")
                        _add(grams, "ffn", _block_input("ffn", proj, p, mask), (ffn_targets[m] - p["ffn.r"])[mask])
                before, after = _refit(s_adapter.output_projection(j, kind), grams[kind], damp=damp)
                result.error_before.append(before)
                result.error_after.append(after)
            with autocast(device):
                own = [run_layer(s_layers[j], h, *c.calls[t]) for h, c in zip(own, calls)]
            for done in t_layers[t:following]:
                released_file_pages(done)
            update(completed=j + 1, description=f"layer {j + 1}/{len(sources)}")
    result.seconds = round(time.monotonic() - started, 1)
    return result


def _add(grams: dict[Kind, Gram], kind: Kind, z: torch.Tensor, t: torch.Tensor) -> None:
    grams[kind] = grams[kind].add(z, t) if kind in grams else Gram(z, t)
