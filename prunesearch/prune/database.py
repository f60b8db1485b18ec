"""The level database: for every layer, block kind and level, which units stay and the
reconstructed output projection. Built once per (model, calibration, method, space), cached
on disk as safetensors, shared by every search and export.

Upstream pruning changes a layer's inputs, and the database cannot know the final config.
Optionally (``streams > 1``, after Týr-the-Pruner's expected upstream error) calibration text
flows through several *streams*, each the model pruned uniformly at one kept fraction with
reconstructed layers; a level is fitted on the inputs of the stream nearest its own fraction,
towards the dense model's residual stream (dense residual + dense block output − the stream's
own residual), so each layer also corrects the error accumulated above it. On MiniLM that
measured worse than fitting every level on dense inputs, so one (dense) stream is the default.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from prunesearch.errors import PruneSearchError
from prunesearch.paths import cache_dir
from prunesearch.prune.apply import UnitChoice
from prunesearch.prune.importance import magnitude, ranking, taylor_scores, wanda
from prunesearch.prune.reconstruct import Gram
from prunesearch.reporter import QUIET, Reporter
from prunesearch.space import KINDS, Adapter, Kind, Space, adapter_for

#: bumped when stored tensors change (2: unit scores kept beside the ranking)
FORMAT = 2
IMPORTANCE = ("magnitude", "wanda", "taylor")
#: "corrected": fit the dense residual stream (corrects upstream error); "block": fit the dense block output
TARGETS = ("corrected", "block")


class _Stop(Exception):
    pass


def _capture_layer_inputs(model, adapter: Adapter, batch: dict) -> tuple[torch.Tensor, tuple, dict]:
    """(hidden states entering layer 0, its other args, its kwargs) for ``batch``."""
    seen = {}

    def hook(module, args, kwargs):
        seen["args"], seen["kwargs"] = args, kwargs
        raise _Stop

    handle = adapter.layers()[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**batch)
    except _Stop:
        pass
    finally:
        handle.remove()
    from transformers.cache_utils import Cache

    # each layer is called many times: no KV cache may record those calls
    args = tuple(None if isinstance(a, Cache) else a for a in seen["args"])
    kwargs = {k: None if isinstance(v, Cache) else v for k, v in seen["kwargs"].items()}
    if "use_cache" in kwargs:
        kwargs["use_cache"] = False
    if args:
        return args[0], args[1:], kwargs
    return kwargs.pop("hidden_states"), (), kwargs


class _Probe:
    """Records, during one layer call, each block's output-projection input/output and residual."""

    def __init__(self, adapter: Adapter, layer: int) -> None:
        self.data: dict[str, torch.Tensor] = {}
        self.handles = []
        for kind in KINDS:
            proj = adapter.output_projection(layer, kind)
            self.handles.append(proj.register_forward_hook(self._io(kind)))
            site, pos = adapter.residual_site(layer, kind)
            self.handles.append(site.register_forward_pre_hook(self._residual(kind, pos)))

    def _io(self, kind):
        def hook(module, args, out):
            self.data[f"{kind}.z"] = args[0].detach()
            self.data[f"{kind}.y"] = (out[0] if isinstance(out, tuple) else out).detach()

        return hook

    def _residual(self, kind, pos):
        def hook(module, args):
            self.data[f"{kind}.r"] = args[pos].detach()

        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _run_layer(layer, hidden, args, kwargs) -> torch.Tensor:
    with torch.no_grad():
        out = layer(hidden, *args, **kwargs)
    return out[0] if isinstance(out, tuple) else out


def _key(loaded, calibration, *, space: Space, method: str) -> str:
    grid = json.dumps([[list(l.heads), list(l.ffn)] for l in space.layers])
    raw = f"{FORMAT}|{loaded.weights_hash}|{calibration.fingerprint}|{method}|{grid}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


class LevelDatabase:
    """Answers ``choice(layer, kind, size)`` from stored tensors."""

    def __init__(self, space: Space, tensors: dict[str, torch.Tensor], *, key: str, path: Path | None = None) -> None:
        self.space = space
        self.tensors = tensors
        self.key = key
        self.path = path

    def choice(self, layer: int, kind: Kind, size: int) -> UnitChoice:
        order = self.tensors[f"{layer}.{kind}.order"]
        keep = order[:size].sort().values  # levels are prefixes of one ranking: they nest
        w = self.tensors.get(f"{layer}.{kind}.{size}.weight")
        b = self.tensors.get(f"{layer}.{kind}.{size}.bias")
        return UnitChoice(keep=keep, weight=None if w is None else w.float(), bias=None if b is None else b.float())

    def group_importance(self) -> list[np.ndarray]:
        """Per genome entry (layer-major: attn, ffn), the share of the layer's importance score held
        by each unit group a level adds, best group first (levels add groups in ranking order)."""
        shares = []
        for layer, grids in enumerate(self.space.layers):
            for kind, grid in (("attn", grids.heads), ("ffn", grids.ffn)):
                order = self.tensors[f"{layer}.{kind}.order"]
                scores = self.tensors[f"{layer}.{kind}.score"].double()[order].clamp(min=0)
                groups = np.array([float(scores[lo:hi].sum()) for lo, hi in zip(grid[:-1], grid[1:])])
                shares.append(groups / max(groups.sum(), 1e-12))
        return shares

    @classmethod
    def build(
        cls,
        loaded,
        calibration,
        *,
        space: Space,
        importance: str = "wanda",
        reconstruct: bool = True,
        target: str = "corrected",
        n_tokens: int | None = None,
        streams: int = 1,
        reporter: Reporter = QUIET,
        cache: bool = True,
    ) -> LevelDatabase:
        """``streams`` calibration streams at evenly spaced kept fractions; 1 fits every level on
        dense inputs, which measured best on MiniLM (reports/reconstruction_quality.md)."""
        if importance not in IMPORTANCE:
            raise PruneSearchError(f"importance {importance!r} is not available; choose one of {', '.join(IMPORTANCE)}")
        if target not in TARGETS:
            raise PruneSearchError(f"target {target!r} is not available; choose one of {', '.join(TARGETS)}")
        model = loaded.model.eval()
        adapter = adapter_for(model)
        n_tokens = n_tokens or (4096 if adapter.is_decoder else 8192)
        method = f"{importance}|{reconstruct}|{target}|{n_tokens}|{streams}"
        key = _key(loaded, calibration, space=space, method=method)
        path = cache_dir("databases") / f"{loaded.name.replace('/', '_')}-{key}.safetensors"
        if cache and path.is_file():
            return cls(space, load_file(str(path)), key=key, path=path)
        tensors = _Builder(
            model,
            adapter,
            space,
            calibration.calib(n_tokens),
            importance=importance,
            reconstruct=reconstruct,
            target=target,
            streams=streams,
            reporter=reporter,
        ).run()
        if cache:
            tmp = path.with_suffix(".partial")
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
            tmp.replace(path)
        return cls(space, tensors, key=key, path=path if cache else None)


class _Builder:
    def __init__(
        self,
        model,
        adapter: Adapter,
        space: Space,
        batch: dict,
        *,
        importance: str,
        reconstruct: bool,
        target: str,
        streams: int,
        reporter: Reporter,
    ) -> None:
        self.model, self.adapter, self.space, self.batch = model, adapter, space, batch
        self.importance, self.reconstruct, self.target, self.reporter = importance, reconstruct, target, reporter
        self.fractions = (
            np.linspace(1.0, 1.0 / streams, streams) if streams > 1 else np.ones(1)
        )  # kept share per stream
        self.scratch = copy.deepcopy(model)  # a model whose layers are swapped for pruned copies
        self.scratch_adapter = adapter_for(self.scratch)
        self.tensors: dict[str, torch.Tensor] = {}
        self.real = batch["attention_mask"].bool()  # padded positions carry no calibration signal
        # Taylor scores need the dense model's gradients: one backward pass before slicing starts
        self.taylor = taylor_scores(model, adapter, batch) if importance == "taylor" else {}

    def _stream_of(self, size: int, total: int) -> int:
        return int(np.argmin(np.abs(self.fractions - size / total)))

    def _stream_sizes(self, layer: int, s: int) -> dict[Kind, int]:
        grid = self.space.layers[layer]
        f = self.fractions[s]
        return {
            "attn": min(grid.heads, key=lambda v: abs(v - f * grid.max_heads)),
            "ffn": min(grid.ffn, key=lambda v: abs(v - f * grid.max_ffn)),
        }

    def _pruned_layer(self, layer: int, sizes: dict[Kind, int]):
        """A copy of the dense layer with ``sizes`` applied from the entries built so far."""
        self.scratch_adapter.layers()[layer] = copy.deepcopy(self.adapter.layers()[layer])
        for kind, size in sizes.items():
            if size is None:
                continue
            c = self._choice(layer, kind, size)
            self.scratch_adapter.apply(layer, kind, c.keep, weight=c.weight, bias=c.bias)
        return self.scratch_adapter.layers()[layer]

    def _choice(self, layer: int, kind: Kind, size: int) -> UnitChoice:
        return LevelDatabase(self.space, self.tensors, key="").choice(layer, kind, size)

    def _probe(self, layer: int, module, hidden, args, kwargs, *, adapter: Adapter) -> tuple[dict, torch.Tensor]:
        probe = _Probe(adapter, layer)
        try:
            out = _run_layer(module, hidden, args, kwargs)
        finally:
            probe.close()
        return probe.data, out

    def _score(self, layer: int, kind: Kind, z: torch.Tensor) -> torch.Tensor:
        if self.importance == "magnitude":
            return magnitude(self.adapter, layer, kind)
        if self.importance == "taylor":
            return self.taylor[(layer, kind)]
        return wanda(self.adapter, layer, kind, z)

    def _fit(self, layer: int, kind: Kind, gram: Gram, sizes: list[int]) -> None:
        order = self.tensors[f"{layer}.{kind}.order"]
        has_bias = self.adapter.output_bias(layer, kind) is not None
        full = self.adapter.n_units(kind)
        for size in sizes:
            if size == full:
                continue  # full width keeps the dense weights: the dense config is the dense model
            if size == 0:
                if has_bias:
                    self.tensors[f"{layer}.{kind}.0.bias"] = gram.mean_target()
                continue
            cols = self.adapter.columns(kind, order[:size].sort().values)
            w, b = gram.solve(
                cols, bias=has_bias, prior=self.adapter.output_weight(layer, kind).detach()[:, cols].double()
            )
            self.tensors[f"{layer}.{kind}.{size}.weight"] = w.half()
            if b is not None:
                self.tensors[f"{layer}.{kind}.{size}.bias"] = b.half()

    def run(self) -> dict[str, torch.Tensor]:
        hidden, args, kwargs = _capture_layer_inputs(self.model, self.adapter, self.batch)
        dense = hidden
        streams = [hidden] * len(self.fractions)
        n = self.space.n_layers
        with self.reporter.bar("level database", "layers", total=n) as update:
            for layer in range(n):
                update(description=f"layer {layer + 1}/{n}")
                dense_layer = self.adapter.layers()[layer]
                d, dense_next = self._probe(layer, dense_layer, dense, args, kwargs, adapter=self.adapter)
                targets = {k: d[f"{k}.r"] + d[f"{k}.y"] for k in KINDS}
                for kind in KINDS:
                    scores = self._score(layer, kind, d[f"{kind}.z"][self.real]).float()
                    self.tensors[f"{layer}.{kind}.order"] = ranking(self.adapter, kind, scores)
                    self.tensors[f"{layer}.{kind}.score"] = scores
                if self.reconstruct:
                    for kind in KINDS:
                        grid = self.space.layers[layer].heads if kind == "attn" else self.space.layers[layer].ffn
                        for s, h in enumerate(streams):
                            sizes = [v for v in grid if self._stream_of(v, grid[-1]) == s]
                            if not sizes:
                                continue
                            # attention sees the stream as is; the FFN sees it after the stream's own attention
                            module = (
                                dense_layer
                                if kind == "attn"
                                else self._pruned_layer(
                                    layer, {"attn": self._stream_sizes(layer, s)["attn"], "ffn": None}
                                )
                            )
                            probe_adapter = self.adapter if kind == "attn" else self.scratch_adapter
                            p, _ = self._probe(layer, module, h, args, kwargs, adapter=probe_adapter)
                            goal = targets[kind] - p[f"{kind}.r"] if self.target == "corrected" else d[f"{kind}.y"]
                            self._fit(layer, kind, Gram(p[f"{kind}.z"][self.real], goal[self.real]), sizes)
                streams = [
                    _run_layer(self._pruned_layer(layer, self._stream_sizes(layer, s)), h, args, kwargs)
                    for s, h in enumerate(streams)
                ]
                dense = dense_next
                update(completed=layer + 1)
        return self.tensors
