import pytest
import torch

from prunesearch.prune._importance import magnitude, ranking, taylor, taylor_scores, top_units, wanda
from prunesearch.space import adapter_for
from tests.space.tiny import FAMILIES, VOCAB


def _batch(n: int = 8, seq: int = 12) -> dict:
    ids = torch.randint(3, VOCAB, (n, seq), generator=torch.Generator().manual_seed(0))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _plant(adapter, layer: int, kind: str, unit: int) -> None:
    """Make ``unit`` dominant: its output-projection columns 50x the rest."""
    cols = adapter.columns(kind, torch.tensor([unit]))
    with torch.no_grad():
        adapter.output_weight(layer, kind)[:, cols] *= 50.0


@pytest.mark.parametrize("kind, unit", [("attn", 2), ("ffn", 37)])
def test_every_score_ranks_a_planted_dominant_unit_first(kind, unit):
    model = FAMILIES["bert"].model()
    adapter = adapter_for(model)
    _plant(adapter, 1, kind, unit)
    batch = _batch()
    inputs = {}
    handle = adapter.output_projection(1, kind).register_forward_pre_hook(
        lambda m, a: inputs.setdefault("z", a[0].detach())
    )
    with torch.no_grad():
        model(**batch)
    handle.remove()
    for scores in (
        magnitude(adapter, 1, kind),
        wanda(adapter, 1, kind, inputs["z"]),
        taylor_scores(model, adapter, batch)[(1, kind)],
    ):
        assert scores.shape == (adapter.n_units(kind),) and (scores >= 0).all()
        assert ranking(adapter, kind, scores)[0].item() == unit


def test_wanda_weighs_columns_by_activation_norm():
    adapter = adapter_for(FAMILIES["bert"].model())
    width = adapter.unit_width("attn")
    z = torch.ones(4, 5, adapter.n_units("attn") * width)
    z[..., 3 * width : 4 * width] = 100.0  # head 3's inputs are loud
    assert wanda(adapter, 0, "attn", z).argmax().item() == 3


def test_taylor_is_zero_without_gradient_and_sign_free():
    adapter = adapter_for(FAMILIES["bert"].model())
    x = torch.randn(2, 3, adapter.n_units("ffn") * adapter.unit_width("ffn"))
    assert (taylor(x, torch.zeros_like(x), adapter, "ffn") == 0).all()
    assert torch.allclose(taylor(x, x, adapter, "ffn"), taylor(x, -x, adapter, "ffn"))


def test_gqa_ranks_whole_kv_groups_and_taylor_runs_on_decoders():
    model = FAMILIES["llama"].model()
    adapter = adapter_for(model)
    g = adapter.heads_per_group
    assert g > 1
    scores = taylor_scores(model, adapter, _batch(4, 10))
    order = ranking(adapter, "attn", scores[(0, "attn")])
    groups = order.view(-1, g).div(g, rounding_mode="floor")
    assert (groups == groups[:, :1]).all()  # each consecutive block of g heads is one KV group
    keep = top_units(adapter, "attn", scores[(0, "attn")], g)
    assert len(keep.div(g, rounding_mode="floor").unique()) == 1
    assert all(p.grad is None for p in model.parameters())  # no gradients left behind
