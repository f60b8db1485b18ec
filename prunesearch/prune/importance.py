"""Unit importance scores and top-k selection (GQA-aware).

Every score function returns one non-negative score per unit of a block
(query heads for ``"attn"``, channels for ``"ffn"``); higher means keep.
"""

from __future__ import annotations

import torch

from prunesearch.space.adapter import Adapter, Kind


def magnitude(adapter: Adapter, layer: int, kind: Kind) -> torch.Tensor:
    """Squared weight norm of each unit's columns in the output projection."""
    w = adapter.output_weight(layer, kind).detach().float()
    per_column = w.pow(2).sum(0)
    return per_column.view(adapter.n_units(kind), adapter.unit_width(kind)).sum(1)


def ranking(adapter: Adapter, kind: Kind, scores: torch.Tensor) -> torch.Tensor:
    """All units best-first; GQA heads move in whole KV groups. Every level is a prefix
    of this order, so levels nest."""
    if kind == "attn" and adapter.heads_per_group > 1:
        g = adapter.heads_per_group
        groups = scores.view(-1, g).sum(1).argsort(descending=True, stable=True)
        return (groups[:, None] * g + torch.arange(g)[None, :]).reshape(-1)
    return scores.argsort(descending=True, stable=True)


def top_units(adapter: Adapter, kind: Kind, scores: torch.Tensor, size: int) -> torch.Tensor:
    """Indices of the ``size`` best units, sorted."""
    return ranking(adapter, kind, scores)[:size].sort().values
