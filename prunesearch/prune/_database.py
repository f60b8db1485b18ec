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
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from prunesearch._heap import file_page_releaser
from prunesearch._paths import cache_dir
from prunesearch._reporter import QUIET, Reporter
from prunesearch.errors import PruneSearchError
from prunesearch.prune._apply import UnitChoice
from prunesearch.prune._importance import magnitude, ranking, taylor_scores, wanda
from prunesearch.prune._layerwise import ScratchModel, capture_calls, probed, run_layer
from prunesearch.prune._reconstruct import Gram
from prunesearch.space import KINDS, Adapter, Kind, Space, adapter_for

#: bumped when stored tensors change (3: a folder, one file per layer, read lazily)
FORMAT = 3
IMPORTANCE = ("magnitude", "wanda", "taylor")
#: "corrected": fit the dense residual stream (corrects upstream error); "block": fit the dense block output
TARGETS = ("corrected", "block")
#: the units' ranking and scores of every layer (small, held in memory); levels are layer-NNN.safetensors
RANKING = "ranking.safetensors"


def _layer_file(layer: int) -> str:
    return f"layer-{layer:03d}.safetensors"


def _key(loaded, calibration, *, space: Space, method: str) -> str:
    grid = json.dumps([[list(l.heads), list(l.ffn)] for l in space.layers])
    raw = f"{FORMAT}|{loaded.weights_hash}|{calibration.fingerprint}|{method}|{grid}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def _choice(order: torch.Tensor, size: int, weight: torch.Tensor | None, bias: torch.Tensor | None) -> UnitChoice:
    keep = order[:size].sort().values  # levels are prefixes of one ranking: they nest
    as_float = {name: None if t is None else t.float() for name, t in (("weight", weight), ("bias", bias))}
    return UnitChoice(keep=keep, **as_float)


class LevelDatabase:
    """Answers ``choice(layer, kind, size)``: the units from the ranking, held in memory (it is small),
    the reconstructed output projection read from that layer's file when asked for (or from memory
    for a database built without the cache), so a search holds one layer's levels at a time."""

    def __init__(
        self,
        space: Space,
        ranking: dict[str, torch.Tensor],
        *,
        key: str,
        folder: Path | None = None,
        levels: dict[str, torch.Tensor] | None = None,
    ) -> None:
        if (folder is None) == (levels is None):
            raise ValueError("a level database reads its levels from a folder or holds them, one of the two")
        self.space = space
        self.ranking = ranking
        self.key = key
        self.path = folder
        self.levels = levels

    def __getstate__(self) -> dict:
        # a database crosses process boundaries whole (every level in memory), so a Ray worker on
        # another machine needs no cache of its own
        state = dict(self.__dict__)
        if self.levels is None:
            state["levels"] = {
                f"{layer}.{name}": tensor
                for layer in range(self.space.n_layers)
                for name, tensor in load_file(str(self.path / _layer_file(layer))).items()
            }
            state["path"] = None
        return state

    def _level(self, layer: int, kind: Kind, size: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        names = (f"{kind}.{size}.weight", f"{kind}.{size}.bias")
        if self.levels is not None:
            return tuple(self.levels.get(f"{layer}.{name}") for name in names)
        with safe_open(str(self.path / _layer_file(layer)), framework="pt") as f:
            stored = set(f.keys())
            return tuple(f.get_tensor(name) if name in stored else None for name in names)

    def choice(self, layer: int, kind: Kind, size: int) -> UnitChoice:
        return _choice(self.ranking[f"{layer}.{kind}.order"], size, *self._level(layer, kind, size))

    def group_importance(self) -> list[np.ndarray]:
        """Per genome entry (layer-major: attn, ffn), the share of the layer's importance score held
        by each unit group a level adds, best group first (levels add groups in ranking order)."""
        shares = []
        for layer, grids in enumerate(self.space.layers):
            for kind, grid in (("attn", grids.heads), ("ffn", grids.ffn)):
                order = self.ranking[f"{layer}.{kind}.order"]
                scores = self.ranking[f"{layer}.{kind}.score"].double()[order].clamp(min=0)
                groups = np.array([float(scores[lo:hi].sum()) for lo, hi in zip(grid[:-1], grid[1:])])
                shares.append(groups / max(groups.sum(), 1e-12))
        return shares

    @classmethod
    def open(cls, space: Space, folder: Path, *, key: str) -> LevelDatabase:
        return cls(space, load_file(str(folder / RANKING)), key=key, folder=folder)

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
        device: str = "cpu",
    ) -> LevelDatabase:
        """``streams`` calibration streams at evenly spaced kept fractions; 1 fits every level on
        dense inputs, which measured best on MiniLM (reports/reconstruction_quality.md).

        Cached as a folder written layer by layer (``.partial`` until the last layer is in), so a
        build holds one layer's levels at a time and a killed build leaves no half database. ``device``: where
        the calibration passes and least-squares fits run (a CUDA GPU when there is one); stored on the CPU."""
        if importance not in IMPORTANCE:
            raise PruneSearchError(f"importance {importance!r} is not available; choose one of {', '.join(IMPORTANCE)}")
        if target not in TARGETS:
            raise PruneSearchError(f"target {target!r} is not available; choose one of {', '.join(TARGETS)}")
        model = loaded.model.eval()
        adapter = adapter_for(model)
        n_tokens = n_tokens or (4096 if adapter.is_decoder else 8192)
        method = f"{importance}|{reconstruct}|{target}|{n_tokens}|{streams}"
        key = _key(loaded, calibration, space=space, method=method)
        folder = cache_dir("databases") / f"{loaded.name.replace('/', '_')}-{key}"
        if cache and (folder / RANKING).is_file():
            return cls.open(space, folder, key=key)
        partial = folder.with_name(folder.name + ".partial") if cache else None
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        if device != "cpu":
            model = copy.deepcopy(model).to(device)
            adapter = adapter_for(model)
        ranking, levels = _Builder(
            model,
            adapter,
            space,
            {k: v.to(device) for k, v in calibration.calib(n_tokens).items()},
            importance=importance,
            reconstruct=reconstruct,
            target=target,
            streams=streams,
            reporter=reporter,
            out=partial,
        ).run()
        if partial is None:
            return cls(space, ranking, key=key, levels=levels)
        save_file({k: v.contiguous().cpu() for k, v in ranking.items()}, str(partial / RANKING))
        shutil.rmtree(folder, ignore_errors=True)
        partial.replace(folder)
        return cls.open(space, folder, key=key)


class _Builder:
    """Fits every layer's levels in turn; with ``out``, writes each layer's file as it is done and
    keeps only the current layer's levels, else keeps them all (an uncached build)."""

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
        out: Path | None,
    ) -> None:
        self.model, self.adapter, self.space, self.batch = model, adapter, space, batch
        self.importance, self.reconstruct, self.target, self.reporter = importance, reconstruct, target, reporter
        self.out = out
        self.fractions = (
            np.linspace(1.0, 1.0 / streams, streams) if streams > 1 else np.ones(1)
        )  # kept share per stream
        self.scratch = ScratchModel(model)  # the dense tensors, its layers swapped for pruned copies
        self.ranking: dict[str, torch.Tensor] = {}
        self.levels: dict[str, torch.Tensor] = {}  # the current layer's (with ``out``), else every layer's
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

    def _pruned(self, layer: int, sizes: dict[Kind, int]):
        """The dense layer with ``sizes`` applied from the levels fitted so far (a context manager)."""
        return self.scratch.pruned(layer, {kind: self._choice(layer, kind, size) for kind, size in sizes.items()})

    def _choice(self, layer: int, kind: Kind, size: int) -> UnitChoice:
        weight, bias = (self.levels.get(f"{layer}.{kind}.{size}.{part}") for part in ("weight", "bias"))
        return _choice(self.ranking[f"{layer}.{kind}.order"], size, weight, bias)

    def _score(self, layer: int, kind: Kind, z: torch.Tensor) -> torch.Tensor:
        if self.importance == "magnitude":
            return magnitude(self.adapter, layer, kind)
        if self.importance == "taylor":
            return self.taylor[(layer, kind)]
        return wanda(self.adapter, layer, kind, z)

    def _fit(self, layer: int, kind: Kind, gram: Gram, sizes: list[int]) -> None:
        order = self.ranking[f"{layer}.{kind}.order"]
        has_bias = self.adapter.output_bias(layer, kind) is not None
        full = self.adapter.n_units(kind)
        for size in sizes:
            if size == full:
                continue  # full width keeps the dense weights: the dense config is the dense model
            if size == 0:
                if has_bias:
                    self.levels[f"{layer}.{kind}.0.bias"] = gram.mean_target().cpu()
                continue
            cols = self.adapter.columns(kind, order[:size].sort().values)
            w, b = gram.solve(
                cols, bias=has_bias, prior=self.adapter.output_weight(layer, kind).detach()[:, cols].double()
            )
            self.levels[f"{layer}.{kind}.{size}.weight"] = w.half().cpu()
            if b is not None:
                self.levels[f"{layer}.{kind}.{size}.bias"] = b.half().cpu()

    def _fit_layer(self, layer: int, streams: list[torch.Tensor], targets: dict, dense_probe: dict, call) -> None:
        for kind in KINDS:
            grid = self.space.layers[layer].heads if kind == "attn" else self.space.layers[layer].ffn
            for s, h in enumerate(streams):
                sizes = [v for v in grid if self._stream_of(v, grid[-1]) == s]
                if not sizes:
                    continue
                if kind == "attn":  # attention sees the stream as is
                    p, _ = probed(self.adapter, layer, self.adapter.layers()[layer], h, *call)
                else:  # the FFN sees it after the stream's own attention
                    with self._pruned(layer, {"attn": self._stream_sizes(layer, s)["attn"]}) as module:
                        p, _ = probed(self.scratch.adapter, layer, module, h, *call)
                goal = targets[kind] - p[f"{kind}.r"] if self.target == "corrected" else dense_probe[f"{kind}.y"]
                self._fit(layer, kind, Gram(p[f"{kind}.z"][self.real], goal[self.real]), sizes)

    def _write(self, layer: int) -> None:
        """With ``out``: the layer's levels to its own file, and out of memory."""
        if self.out is None:
            return
        prefix = f"{layer}."
        mine = {k.removeprefix(prefix): v.contiguous().cpu() for k, v in self.levels.items() if k.startswith(prefix)}
        save_file(mine, str(self.out / _layer_file(layer)))
        self.levels = {k: v for k, v in self.levels.items() if not k.startswith(prefix)}

    def run(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(every layer's ranking and scores, the levels still held: none with ``out``)."""
        inputs, _ = capture_calls(self.model, self.batch)
        dense = inputs.hidden
        streams = [dense] * len(self.fractions)
        n = self.space.n_layers
        # a dense layer is not read again once its levels are fitted: its mapped pages go (SmolLM2: 16 MB a layer,
        # which would otherwise all be resident by the last layer)
        release = file_page_releaser()
        with self.reporter.bar("level database", "layers", total=n) as update:
            for layer in range(n):
                update(description=f"layer {layer + 1}/{n}")
                call = inputs.calls[layer]
                d, dense_next = probed(self.adapter, layer, self.adapter.layers()[layer], dense, *call)
                targets = {k: d[f"{k}.r"] + d[f"{k}.y"] for k in KINDS}
                for kind in KINDS:
                    scores = self._score(layer, kind, d[f"{kind}.z"][self.real]).float()
                    self.ranking[f"{layer}.{kind}.order"] = ranking(self.adapter, kind, scores).cpu()
                    self.ranking[f"{layer}.{kind}.score"] = scores.cpu()
                if self.reconstruct:
                    self._fit_layer(layer, streams, targets, d, call)
                next_streams = []
                for s, h in enumerate(streams):
                    with self._pruned(layer, self._stream_sizes(layer, s)) as module:
                        next_streams.append(run_layer(module, h, *call))
                streams, dense = next_streams, dense_next
                self._write(layer)
                release(self.adapter.layers()[layer])
                update(completed=layer + 1)
        return self.ranking, self.levels
