import torch

from prunesearch.prune import _precision


def test_autocast_keeps_no_bf16_copies_of_trained_weights(monkeypatch):
    """Each pass is its own autocast region reading each weight once: a cache would only hold the copies."""
    monkeypatch.setattr(_precision, "bf16_native", lambda device: True)
    layer = torch.nn.Linear(8, 8)
    with _precision.autocast("cpu"):
        assert torch.is_autocast_enabled("cpu")
        assert not torch.is_autocast_cache_enabled()
        assert layer(torch.randn(2, 8)).dtype == torch.bfloat16


def test_autocast_is_off_where_bf16_is_emulated(monkeypatch):
    monkeypatch.setattr(_precision, "bf16_native", lambda device: False)
    with _precision.autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")
