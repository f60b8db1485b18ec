"""Low-rank adapters: recovery that trains a few weights beside each projection, merged into it after.

Each projection W of a block (a Linear or a GPT-2 Conv1D) computes W x + B A x while they are attached, with A
(rank x in) drawn at random and B (out x rank) starting at zero, so the model starts exactly as pruned (LoRA, Hu
et al. 2021; LLM-Pruner recovers its pruned models this way). Only A and B take gradients: the backward pass forms
no gradient for W itself, which skips a third of a trained projection's backward work, and the optimiser keeps
moments for A and B only (a rank-32 SmolLM2 pick: about 6 M numbers instead of 77 M). On leaving, B A is added
to W and the adapters are removed: the model has its own shapes and modules again.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from prunesearch.space._modules import linear_weight


class LowRank(nn.Module):
    """The update B A of one projection: ``rank`` inputs' worth of directions, B starting at zero."""

    def __init__(self, weight: torch.Tensor, *, rank: int, generator: torch.Generator) -> None:
        super().__init__()
        out_features, in_features = weight.shape
        bound = 1.0 / math.sqrt(in_features)  # A as nn.Linear draws its weight: the update's scale is the lr's
        a = (torch.rand(rank, in_features, generator=generator) * 2 - 1) * bound
        self.a = nn.Parameter(a.to(device=weight.device, dtype=weight.dtype))
        self.b = nn.Parameter(torch.zeros(out_features, rank, device=weight.device, dtype=weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(nn.functional.linear(x, self.a), self.b)

    @torch.no_grad()
    def merge_into(self, projection: nn.Module) -> None:
        linear_weight(projection).add_(self.b @ self.a)


def projections(layers: nn.ModuleList) -> list[nn.Module]:
    """The projections of ``layers``: their Linear and GPT-2 Conv1D modules."""
    return [m for m in layers.modules() if isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D"]


@contextlib.contextmanager
def low_rank_adapters(model: nn.Module, layers: nn.ModuleList, *, rank: int, seed: int) -> Iterator[list[nn.Parameter]]:
    """While the block runs, every projection of ``layers`` carries a rank-``rank`` adapter (a submodule named
    ``adapter``, so the model's state dict holds it) and every other parameter of ``model`` is frozen; yields the
    adapters' parameters. After the block each adapter is merged into its projection and removed, and the model's
    parameters take gradients as before."""
    generator = torch.Generator().manual_seed(seed)
    attached = projections(layers)
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    hooks = []
    for projection in attached:
        projection.adapter = LowRank(linear_weight(projection), rank=rank, generator=generator)
        hooks.append(projection.register_forward_hook(_add_adapter))
    try:
        yield [p for projection in attached for p in projection.adapter.parameters()]
    finally:
        for hook in hooks:
            hook.remove()
        for projection in attached:
            projection.adapter.merge_into(projection)
            del projection.adapter
        for p in frozen:
            p.requires_grad_(True)


def _add_adapter(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    return output + module.adapter(args[0])
