"""Turn a config into a real, smaller model."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from prunesearch._config import Config
from prunesearch._heap import file_page_releaser
from prunesearch.prune._importance import magnitude, top_units
from prunesearch.space import KINDS, Adapter, Kind, Space, adapter_for

ARCH_KEY = "prunesearch_arch"


@dataclass(frozen=True)
class UnitChoice:
    """Which units of one block to keep, with an optional reconstructed output projection."""

    keep: torch.Tensor
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None


class UnitSource(Protocol):
    """Anything that answers "which units, with which weights, at this size" (a level database)."""

    space: Space

    def choice(self, layer: int, kind: Kind, size: int) -> UnitChoice: ...


class MagnitudeSource:
    """Weight-magnitude choice with no reconstruction: the plain baseline."""

    def __init__(self, adapter: Adapter, *, ffn_step: int = 128) -> None:
        self.adapter = adapter
        self.space = adapter.space(ffn_step=ffn_step)

    def choice(self, layer: int, kind: Kind, size: int) -> UnitChoice:
        scores = magnitude(self.adapter, layer, kind)
        return UnitChoice(keep=top_units(self.adapter, kind, scores, size))


def shared_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose parameters and buffers are the original's own tensors."""
    memo = {id(t): t for t in itertools.chain(module.parameters(), module.buffers())}
    return copy.deepcopy(module, memo)


def tensor_slots(model: nn.Module) -> list[tuple[dict, str, torch.Tensor]]:
    """(the module's dict holding it, its name there, the tensor) for every parameter and buffer of ``model``'s
    modules; a tensor tied across modules comes once per slot. A list: callers replace tensors in those slots."""
    return [
        (slots, name, tensor)
        for module in model.modules()
        for slots in (module._parameters, module._buffers)
        for name, tensor in slots.items()
        if tensor is not None
    ]


def _own_tensors(model: nn.Module, dense: nn.Module, *, release: Callable[[torch.Tensor], int]) -> None:
    """Give ``model`` a copy of each parameter and buffer that still holds ``dense``'s memory (a view of it too);
    tensors tied to each other stay tied. Each dense tensor copied is ``release``d (its mapped pages: a nearly
    dense model's copy would otherwise read the whole dense model back in)."""
    dense_memory = {t.untyped_storage().data_ptr() for t in itertools.chain(dense.parameters(), dense.buffers())}
    copies: dict[int, torch.Tensor] = {}
    for slots, name, tensor in tensor_slots(model):
        if tensor.untyped_storage().data_ptr() not in dense_memory:
            continue
        if id(tensor) not in copies:
            clone = tensor.detach().clone()
            release(tensor)
            is_parameter = isinstance(tensor, nn.Parameter)
            copies[id(tensor)] = nn.Parameter(clone, tensor.requires_grad) if is_parameter else clone
        slots[name] = copies[id(tensor)]


def prune(
    model: nn.Module,
    config: Config,
    database: UnitSource | None = None,
    *,
    ffn_step: int = 128,
) -> nn.Module:
    """A physically smaller copy of ``model`` keeping ``config``'s sizes.

    Units and output-projection weights come from ``database`` (a LevelDatabase);
    without one, units are chosen by weight magnitude and not reconstructed.
    """
    # No full copy of the weights: the copy starts over the dense tensors (Adapter.apply builds new, smaller ones
    # and never writes into the old), each dense layer's mapped pages are handed back once it is sliced, and what
    # stays shared is copied before finalize() writes into any of it
    pruned, dense = shared_copy(model), adapter_for(model)
    source = database if database is not None else MagnitudeSource(dense, ffn_step=ffn_step)
    source.space.validate(config)
    adapter = adapter_for(pruned)
    dense_layers, release = dense.layers(), file_page_releaser()
    record = []
    for i, layer in enumerate(config.layers):
        entry = {"heads": layer.heads, "ffn": layer.ffn}
        for kind, size in zip(KINDS, (layer.heads, layer.ffn)):
            choice = source.choice(i, kind, size)
            adapter.apply(i, kind, choice.keep, weight=choice.weight, bias=choice.bias)
            entry[f"{kind}_units"] = sorted(int(u) for u in choice.keep)
        record.append(entry)
        release(dense_layers[i])
    _own_tensors(pruned, model, release=release)
    dense_types = getattr(pruned.config, "layer_types", None)
    adapter.finalize()
    setattr(
        pruned.config,
        ARCH_KEY,
        {
            "format": 1,
            "family": adapter.family,
            "dense": {"num_hidden_layers": dense.n_layers, "layer_types": dense_types},
            "layers": record,
        },
    )
    return pruned


def arch_of(model: nn.Module) -> dict | None:
    """The pruning record a pruned model carries (None for a dense model)."""
    return getattr(model.config, ARCH_KEY, None)


def masked(model: nn.Module, config: Config, database: UnitSource | None = None, *, ffn_step: int = 128) -> nn.Module:
    """The dense model with the same units zeroed instead of removed: the reference
    that :func:`prune` (without reconstruction) must reproduce exactly."""
    masked_model = copy.deepcopy(model)
    source = database if database is not None else MagnitudeSource(adapter_for(model), ffn_step=ffn_step)
    adapter = adapter_for(masked_model)
    for i, layer in enumerate(config.layers):
        for kind, size in zip(KINDS, (layer.heads, layer.ffn)):
            adapter.mask(i, kind, source.choice(i, kind, size).keep)
    return masked_model
