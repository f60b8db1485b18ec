"""Unit importance scores and top-k selection (GQA-aware).

Every score function returns one non-negative score per unit of a block
(query heads for ``"attn"``, channels for ``"ffn"``); higher means keep.
"""

from __future__ import annotations

import torch

from prunesearch._pooling import mean_pool
from prunesearch.space._adapter import Adapter, Kind


def magnitude(adapter: Adapter, layer: int, kind: Kind) -> torch.Tensor:
    """Squared weight norm of each unit's columns in the output projection."""
    w = adapter.output_weight(layer, kind).detach().float()
    return _per_unit(adapter, kind, w.pow(2).sum(0))


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


def _per_unit(adapter: Adapter, kind: Kind, per_column: torch.Tensor) -> torch.Tensor:
    return per_column.view(adapter.n_units(kind), adapter.unit_width(kind)).sum(1)


def wanda(adapter: Adapter, layer: int, kind: Kind, inputs: torch.Tensor) -> torch.Tensor:
    """Activation-aware (Wanda): ``|W_ij| * ||X_j||`` over a unit's weights, with ``X`` the
    calibration inputs of the output projection (``(..., units*width)``)."""
    w = adapter.output_weight(layer, kind).detach().float().abs()
    norms = inputs.reshape(-1, inputs.shape[-1]).float().norm(dim=0)
    return _per_unit(adapter, kind, (w * norms).sum(0))


def taylor(inputs: torch.Tensor, input_grads: torch.Tensor, adapter: Adapter, kind: Kind) -> torch.Tensor:
    """First-order Taylor (Fisher form): removing a unit changes the loss by about
    ``-sum_j x_j * dL/dx_j`` over its columns; squared per sequence and summed, so signs
    from different sequences do not cancel. ``inputs``/``input_grads``: (batch, seq, units*width)."""
    per_seq = (inputs.float() * input_grads.float()).sum(1)  # (batch, columns)
    per_unit = per_seq.view(len(per_seq), adapter.n_units(kind), adapter.unit_width(kind)).sum(2)
    return per_unit.pow(2).sum(0)


def taylor_scores(
    model: torch.nn.Module, adapter: Adapter, batch: dict[str, torch.Tensor], *, micro_batch: int = 8, seed: int = 0
) -> dict[tuple[int, Kind], torch.Tensor]:
    """Taylor scores of every (layer, kind) from one backward pass per micro-batch.

    Loss: next-token negative log-likelihood for decoders. Encoders have no labels: the loss is
    the sentence embedding (mean-pooled last hidden state) projected on a random Gaussian
    direction per sequence, so the squared first-order term estimates how far removing a unit
    moves the embedding in any direction (a Hutchinson-style estimate of the output Jacobian).
    The squared norm of the output would be blind here: a post-LayerNorm output keeps its norm,
    and a score of MiniLM's layer 0 that ignored it removed units the model cannot lose.
    """
    directions = torch.Generator().manual_seed(seed)
    saved: dict[tuple[int, Kind], torch.Tensor] = {}
    scores: dict[tuple[int, Kind], torch.Tensor] = {}
    handles = []

    def keep_input(key):
        def hook(module, args):
            args[0].retain_grad()
            saved[key] = args[0]

        return hook

    for layer in range(adapter.n_layers):
        for kind in ("attn", "ffn"):
            handles.append(adapter.output_projection(layer, kind).register_forward_pre_hook(keep_input((layer, kind))))
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():  # callers may hold torch.no_grad()
            for i in range(0, len(batch["input_ids"]), micro_batch):
                ids = batch["input_ids"][i : i + micro_batch]
                mask = batch["attention_mask"][i : i + micro_batch]
                model.zero_grad(set_to_none=True)
                if adapter.is_decoder:
                    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
                    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
                    loss = (nll * mask[:, 1:]).sum() / mask[:, 1:].sum().clamp_min(1)
                else:
                    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
                    pooled = mean_pool(hidden.float(), mask)
                    loss = (pooled * torch.randn(pooled.shape, generator=directions)).sum()
                loss.backward()
                for key, x in saved.items():
                    s = taylor(x.detach(), x.grad, adapter, key[1])
                    scores[key] = scores[key] + s if key in scores else s
                saved.clear()
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return scores
