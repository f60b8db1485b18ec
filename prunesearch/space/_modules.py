"""Slicing projections, and the small modules that stand in for a removed block (so no zero-width tensor is
ever built; they live in the exports' modelling file, which builds pruned shapes)."""

from __future__ import annotations

import torch
from torch import nn

# the exported models' modelling file defines them (it imports only torch and transformers): one class each
from prunesearch.standalone.modeling_pruned import BiasOnly, Passthrough

__all__ = ["BiasOnly", "Passthrough", "linear_weight", "sliced_linear", "unit_columns"]


def linear_weight(module: nn.Module) -> torch.Tensor:
    """The (out_features, in_features) weight of a Linear or a GPT-2 style Conv1D."""
    if isinstance(module, nn.Linear):
        return module.weight
    if type(module).__name__ == "Conv1D":  # transformers' Conv1D stores (in, out)
        return module.weight.t()
    raise TypeError(f"not a projection: {type(module).__name__}")


def sliced_linear(
    module: nn.Module,
    *,
    rows: torch.Tensor | None = None,
    cols: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> nn.Linear:
    """A new nn.Linear keeping ``rows`` (outputs) and ``cols`` (inputs) of ``module``.

    ``weight``/``bias`` replace the sliced values (a reconstructed projection).
    Conv1D is turned into Linear: same maths, one code path downstream.
    """
    w = dense = linear_weight(module).detach()
    b = module.bias.detach() if module.bias is not None else None
    if rows is not None:
        w = w[rows]
        b = b[rows] if b is not None else None
    if cols is not None:
        w = w[:, cols]
    if weight is not None:
        if weight.shape != w.shape:
            raise ValueError(f"replacement weight {tuple(weight.shape)} != sliced {tuple(w.shape)}")
        w = weight
    if bias is not None and b is not None:
        b = bias
    # the model's device and dtype, whatever a replacement weight came in (a level database's fp16 on disk)
    new = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, dtype=dense.dtype, device=dense.device)
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    return new


def unit_columns(units: torch.Tensor, width: int) -> torch.Tensor:
    """Columns covered by ``units`` when each unit spans ``width`` consecutive columns."""
    units = torch.as_tensor(units, dtype=torch.long)
    return (units[:, None] * width + torch.arange(width)[None, :]).reshape(-1)
