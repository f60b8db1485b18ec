"""A model run one layer at a time, any layer swapped for a pruned copy that shares the dense tensors.

Scoring a candidate by pruning a copy of the whole model costs a second model of memory per
evaluation. Here each layer is pruned just before the calibration rows' hidden states pass through
it and dropped after, so a candidate costs one layer's sliced weights. A pruned layer starts as a
*shared copy* of the dense one (new module objects over the dense tensors); slicing builds new,
smaller projections (see Adapter.apply), so the dense model is never written to.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from prunesearch._heap import pages_released_as_run
from prunesearch.prune._apply import UnitChoice, shared_copy
from prunesearch.space import KINDS, Adapter, Kind, adapter_for


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
    output (the last hidden state, after a pre-LN family's final norm). Only the first layer's hidden
    states are kept (the rest are recomputed layer by layer: SmolLM2 at 4k tokens, 9 MB a layer), and each
    layer's mapped weights are handed back once it has run (``pages_released_as_run``)."""
    adapter = adapter_for(model)
    seen: list[tuple] = []
    layers = adapter.layers()
    handles = [
        layer.register_forward_pre_hook(lambda module, args, kwargs: _record(seen, args, kwargs), with_kwargs=True)
        for layer in layers
    ]
    try:
        extra = {"use_cache": False} if adapter.is_decoder else {}
        with pages_released_as_run(layers):
            out = model.base_model(**batch, **extra).last_hidden_state
    finally:
        for handle in handles:
            handle.remove()
    return _as_calls(seen), out


def _record(seen: list[tuple], args: tuple, kwargs: dict) -> None:
    """Add one layer call to ``seen`` as (hidden states, other positional arguments, keyword arguments); only the
    first layer's hidden states are kept (the others are recomputed layer by layer)."""
    args, kwargs = _without_caches(args, kwargs)
    if args:
        hidden, rest = args[0], args[1:]
    else:
        kwargs = dict(kwargs)
        hidden, rest = kwargs.pop("hidden_states"), ()
    seen.append((None if seen else hidden, rest, kwargs))


def _as_calls(seen: list[tuple]) -> LayerCalls:
    return LayerCalls(hidden=seen[0][0], calls=[(rest, kwargs) for _, rest, kwargs in seen])


class Probe:
    """Records, during one layer call, each block's output-projection input (``{kind}.z``) and output
    (``{kind}.y``) and the residual stream the block is added to (``{kind}.r``)."""

    def __init__(self, adapter: Adapter, layer: int) -> None:
        self.data: dict[str, torch.Tensor] = {}
        self.handles = []
        for kind in KINDS:
            proj = adapter.output_projection(layer, kind)
            self.handles.append(proj.register_forward_hook(self._io(kind), with_kwargs=True))
            site, pos = adapter.residual_site(layer, kind)
            self.handles.append(site.register_forward_pre_hook(self._residual(kind, pos)))

    def _io(self, kind):
        def hook(module, args, kwargs, out):
            # a removed pre-LN block (BiasOnly) takes its input by keyword
            self.data[f"{kind}.z"] = (args[0] if args else next(iter(kwargs.values()))).detach()
            self.data[f"{kind}.y"] = (out[0] if isinstance(out, tuple) else out).detach()

        return hook

    def _residual(self, kind, pos):
        def hook(module, args):
            self.data[f"{kind}.r"] = args[pos].detach()

        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def run_layer(layer: nn.Module, hidden: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
    with torch.no_grad():
        out = layer(hidden, *args, **kwargs)
    return out[0] if isinstance(out, tuple) else out


def probed(
    adapter: Adapter, layer: int, module: nn.Module, hidden: torch.Tensor, args: tuple, kwargs: dict
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``module`` (layer ``layer`` of ``adapter``'s model, or a pruned copy in its place) run on ``hidden``:
    what a Probe recorded, and the layer's output."""
    probe = Probe(adapter, layer)
    try:
        out = run_layer(module, hidden, args, kwargs)
    finally:
        probe.close()
    return probe.data, out


class _Recorded(Exception):
    """Raised by the last recorder: every layer's call is known, nothing past it needs to run."""


class _Recorder(nn.Module):
    """Stands in for a layer: records the call and computes nothing."""

    def __init__(self, seen: list, last: bool) -> None:
        super().__init__()
        self.seen, self.last = seen, last

    def forward(self, *args, **kwargs):
        _record(self.seen, args, kwargs)
        if self.last:
            raise _Recorded
        return args[0] if args else kwargs["hidden_states"]


@torch.no_grad()
def record_calls(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> LayerCalls:
    """Every layer's call for ``batch`` (the embeddings' output and each layer's masks, positions and other
    arguments) without running any layer: each is swapped for a recorder for one pass of the base model."""
    adapter = adapter_for(model)
    layers = adapter.layers()
    real = list(layers)
    seen: list[tuple] = []
    for i in range(len(real)):
        layers[i] = _Recorder(seen, last=i == len(real) - 1)
    try:
        extra = {"use_cache": False} if adapter.is_decoder else {}
        model.base_model(**batch, **extra)
    except _Recorded:
        pass
    finally:
        for i, layer in enumerate(real):
            layers[i] = layer
    return _as_calls(seen)


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
