"""Low-rank adapters: the model computes W x + B A x while they are attached, and the same after they are merged."""

import copy

import pytest
import torch

from prunesearch.prune._adapters import low_rank_adapters, projections
from prunesearch.prune._recover import RecoveryOptions, recover
from prunesearch.space import adapter_for
from tests.prune.test_recover import RandomText, _half_pruned
from tests.space.tiny import FAMILIES


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_merged_adapters_compute_what_the_attached_ones_did_and_leave_the_model_as_it_was(family):
    model = FAMILIES[family].model().eval()
    keys = list(model.state_dict())
    ids = torch.randint(3, model.config.vocab_size, (2, 7), generator=torch.Generator().manual_seed(1))
    before = model(input_ids=ids)[0]
    with torch.no_grad(), low_rank_adapters(model, adapter_for(model).layers(), rank=2, seed=0) as params:
        assert torch.allclose(model(input_ids=ids)[0], before)  # B starts at zero
        assert all(p.requires_grad for p in params)
        assert not any(p.requires_grad for name, p in model.named_parameters() if ".adapter." not in name)
        for p in params:
            p.add_(torch.randn_like(p) * 0.1)
        adapted = model(input_ids=ids)[0]
    assert not torch.allclose(adapted, before)
    assert torch.allclose(model(input_ids=ids)[0], adapted, atol=1e-5)
    assert list(model.state_dict()) == keys and all(p.requires_grad for p in model.parameters())
    assert not any(hasattr(m, "adapter") or m._forward_hooks for m in projections(adapter_for(model).layers()))


def test_recovery_through_adapters_lowers_the_validation_loss_and_trains_no_weight_itself():
    teacher, student = _half_pruned("llama")
    untouched = copy.deepcopy(student)
    options = RecoveryOptions(tokens=1536, lr=3e-3, batch=8, validate_every=3, patience=50, adapter_rank=4)
    text = RandomText(teacher.config.vocab_size - 3)
    result = recover(student, teacher, text, is_decoder=True, options=options, batches=text.batches(8))
    assert result.validation_after < result.validation_before
    assert min(loss for _, loss in result.history) == result.validation_after
    changed = {k for k, v in student.state_dict().items() if not torch.equal(v, untouched.state_dict()[k])}
    # what changed is the projections (their merged adapters): never a norm, nor the embeddings
    assert changed and all(k.endswith("proj.weight") for k in changed)


def test_adapters_and_trained_embeddings_are_refused_together():
    with pytest.raises(ValueError, match="train_embeddings"):
        RecoveryOptions(tokens=10, adapter_rank=8, train_embeddings=True)


def test_frozen_projections_held_in_bf16_compute_the_same_under_autocast_and_come_back_whole():
    model = FAMILIES["llama"].model().eval()
    layers = adapter_for(model).layers()
    originals = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.randint(3, model.config.vocab_size, (2, 7), generator=torch.Generator().manual_seed(1))
    outputs = []
    for frozen_dtype in (None, torch.bfloat16):
        with torch.no_grad(), low_rank_adapters(model, layers, rank=2, seed=0, frozen_dtype=frozen_dtype):
            held = {p.dtype for m in projections(layers) for p in m.parameters(recurse=False)}
            assert held == {frozen_dtype or torch.float32}
            with torch.autocast("cpu", dtype=torch.bfloat16):
                outputs.append(model(input_ids=ids)[0])
    assert torch.equal(outputs[0], outputs[1])  # autocast multiplied the same bf16 values
    assert all(torch.equal(v, originals[k]) for k, v in model.state_dict().items())  # B was zero: nothing merged
