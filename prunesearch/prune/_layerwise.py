"""A model run one layer at a time, any layer swapped for a pruned copy that shares the dense tensors.

Scoring a candidate by pruning a copy of the whole model costs a second model of memory per
evaluation. Here each layer is pruned just before the calibration rows' hidden states pass through
it and dropped after, so a candidate costs one layer's sliced weights. A pruned layer starts as a
*shared copy* of the dense one (new module objects over the dense tensors); slicing builds new,
smaller projections (see Adapter.apply), so the dense model is never written to.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from prunesearch.prune._apply import UnitChoice
from prunesearch.space import Kind, adapter_for


def shared_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose parameters and buffers are the original's own tensors."""
    memo = {id(t): t for t in itertools.chain(module.parameters(), module.buffers())}
    return copy.deepcopy(module, memo)


@dataclass
class LayerCalls:
    """What every layer was called with for one batch: the hidden states entering the first
    layer, and per layer the other positional arguments and keyword arguments."""

    hidden: torch.Tensor
    calls: list[tuple[tuple, dict]]


def _without_caches(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Each layer is called many times: no KV cache may record those calls."""
    from transformers.cache_utils import Cache

    args = tuple(None if isinstance(a, Cache) else a for a in args)
    kwargs = {k: None if isinstance(v, Cache) else v for k, v in kwargs.items()}
    if "use_cache" in kwargs:
        kwargs["use_cache"] = False
    return args, kwargs


@torch.no_grad()
def capture_calls(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[LayerCalls, torch.Tensor]:
    """Every layer's call for ``batch`` in one dense forward of the base model, and that forward's
    output (the last hidden state, after a pre-LN family's final norm)."""
    adapter = adapter_for(model)
    seen: list[tuple[tuple, dict]] = []

    def hook(module, args, kwargs):
        seen.append(_without_caches(args, kwargs))

    handles = [layer.register_forward_pre_hook(hook, with_kwargs=True) for layer in adapter.layers()]
    try:
        extra = {"use_cache": False} if adapter.is_decoder else {}
        out = model.base_model(**batch, **extra).last_hidden_state
    finally:
        for handle in handles:
            handle.remove()
    calls = []
    hidden = None
    for args, kwargs in seen:
        if args:
            first, rest = args[0], args[1:]
        else:
            kwargs = dict(kwargs)
            first, rest = kwargs.pop("hidden_states"), ()
        hidden = first if hidden is None else hidden
        calls.append((rest, kwargs))
    return LayerCalls(hidden=hidden, calls=calls), out


def run_layer(layer: nn.Module, hidden: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
    with torch.no_grad():
        out = layer(hidden, *args, **kwargs)
    return out[0] if isinstance(out, tuple) else out


class ScratchModel:
    """A shared copy of a model whose layers are swapped, one at a time, for pruned copies."""

    def __init__(self, model: nn.Module) -> None:
        self.model = shared_copy(model)
        self.adapter = adapter_for(self.model)
        self.dense_layers = list(self.adapter.layers())

    @contextmanager
    def pruned(self, layer: int, choices: Mapping[Kind, UnitChoice]) -> Iterator[nn.Module]:
        """Layer ``layer`` with ``choices`` applied, in place of the dense one while the block runs."""
        slots = self.adapter.layers()
        slots[layer] = shared_copy(self.dense_layers[layer])
        try:
            for kind, choice in choices.items():
                self.adapter.apply(layer, kind, choice.keep, weight=choice.weight, bias=choice.bias)
            yield slots[layer]
        finally:
            slots[layer] = self.dense_layers[layer]
