"""Small modules that stand in for a removed block, so no zero-width tensor is ever built."""

from __future__ import annotations

import torch
from torch import nn


class BiasOnly(nn.Module):
    """A projection whose inputs are all gone: it outputs its bias, or zeros when the
    projection had none (then it holds no parameter, as the dense model held none).

    It takes the shape of its input's leading dimensions and ignores the values,
    which is what the dense projection does when every input unit is masked.
    """

    def __init__(self, bias: torch.Tensor | None, *, size: int | None = None, returns_tuple: bool = False) -> None:
        super().__init__()
        if bias is None and size is None:
            raise ValueError("BiasOnly needs a bias or an output size")
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None
        self.size = int(bias.shape[0]) if bias is not None else int(size)
        self.returns_tuple = returns_tuple

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        shape = (*hidden_states.shape[:-1], self.size)
        if self.bias is None:
            out = hidden_states.new_zeros(shape)
        else:
            out = self.bias.expand(shape)
        return (out, None) if self.returns_tuple else out


class Passthrough(nn.Module):
    """Hands its first input on unchanged (the input side of a removed block)."""

    def __init__(self, *, returns_tuple: bool = False) -> None:
        super().__init__()
        self.returns_tuple = returns_tuple

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        return (hidden_states, None) if self.returns_tuple else hidden_states


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
