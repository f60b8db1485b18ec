"""Low-rank adapters: recovery that trains a few weights beside each projection, merged into it after.

Each projection W of a block (a Linear or a GPT-2 Conv1D) computes W x + B A x while they are attached, with A
(rank x in) drawn at random and B (out x rank) starting at zero, so the model starts exactly as pruned (LoRA, Hu
et al. 2021; LLM-Pruner recovers its pruned models this way). Only A and B take gradients: the backward pass forms
no gradient for W itself, and the optimiser keeps moments for A and B only (rank 32 on a 108M SmolLM2 pick: 8 M
numbers instead of 80 M). That is a saving of memory, not of time: on 2 cores in bf16 the adapters' own small
products cost about what the skipped weight gradients did (reports/recovery_adapters.md). On leaving, B A is added
to W and the adapters are removed: the model has its own shapes and modules again.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
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
def low_rank_adapters(
    model: nn.Module, layers: nn.ModuleList, *, rank: int, seed: int, frozen_dtype: torch.dtype | None = None
) -> Iterator[list[nn.Parameter]]:
    """While the block runs, every projection of ``layers`` carries a rank-``rank`` adapter (a submodule named
    ``adapter``, so the model's state dict holds it) and every other parameter of ``model`` is frozen; yields the
    adapters' parameters. After the block each adapter is merged into its projection and removed, and the model's
    parameters take gradients as before.

    ``frozen_dtype`` (bf16, for a block run under bf16 autocast): the projections hold their frozen weights in it
    meanwhile, the originals waiting in a file. Autocast would cast them to it at every pass, and again where a
    layer is recomputed, so the values multiplied are the same; the casts go, and the weights take half the memory."""
    generator = torch.Generator().manual_seed(seed)
    attached = projections(layers)
    with frozen(list(model.parameters())):
        hooks = []
        for projection in attached:
            projection.adapter = LowRank(linear_weight(projection), rank=rank, generator=generator)
            hooks.append(projection.register_forward_hook(_add_adapter))
        cast = _held_in(frozen_dtype, [p for m in attached for p in m.parameters(recurse=False)])
        try:
            with cast:
                yield [p for projection in attached for p in projection.adapter.parameters()]
        finally:
            for hook in hooks:
                hook.remove()
            for projection in attached:
                projection.adapter.merge_into(projection)
                del projection.adapter


@contextlib.contextmanager
def frozen(params: list[nn.Parameter]) -> Iterator[None]:
    """While the block runs, ``params`` take no gradients; those that took them do again after."""
    stopped = [p for p in params if p.requires_grad]
    for p in stopped:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in stopped:
            p.requires_grad_(True)


@contextlib.contextmanager
def _held_in(dtype: torch.dtype | None, params: list[nn.Parameter]) -> Iterator[None]:
    """While the block runs, ``params`` hold their values in ``dtype`` (none: as they are); their own values are
    kept in a file and put back after."""
    if dtype is None:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="prunesearch-adapters-") as folder:
        path = str(Path(folder) / "frozen.safetensors")
        save_file({str(i): p.data.contiguous() for i, p in enumerate(params)}, path)
        for p in params:
            p.data = p.data.to(dtype)
        try:
            yield
        finally:
            originals = load_file(path)
            for i, p in enumerate(params):
                p.data = originals[str(i)]


def _add_adapter(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    return output + module.adapter(args[0])
