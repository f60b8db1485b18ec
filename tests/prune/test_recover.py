"""Recovery distillation: the student moves towards the teacher, validated on rows it does not train on."""

import contextlib
import copy

import torch

from prunesearch.prune import MagnitudeSource, prune
from prunesearch.prune._recover import RecoveryOptions, distillation_loss, recover
from prunesearch.space import adapter_for
from tests.space.tiny import FAMILIES, FFN_STEP


class RandomText:
    """Random-token training and validation rows for tiny models (the real text needs a tokenizer)."""

    def __init__(self, vocab: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.train, self.valid = (
            torch.randint(3, vocab, (96, 16), generator=g),
            torch.randint(3, vocab, (16, 16), generator=g),
        )

    def batches(self, rows: int):
        for i in range(0, len(self.train), rows):
            ids = self.train[i : i + rows]
            yield {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def validation(self, n_tokens: int) -> dict:
        return {"input_ids": self.valid, "attention_mask": torch.ones_like(self.valid)}


def _half_pruned(family: str):
    """A tiny teacher of ``family`` and its student with half of every block's units."""
    teacher = FAMILIES[family].model()
    space = adapter_for(teacher).space(ffn_step=FFN_STEP)
    source = MagnitudeSource(adapter_for(teacher), ffn_step=FFN_STEP)
    return teacher, prune(teacher, space.from_genome(space.genome_upper // 2), source)


def test_recovery_lowers_the_validation_loss_and_keeps_the_best_state():
    for family, is_decoder in (("bert", False), ("llama", True)):
        teacher, student = _half_pruned(family)
        untouched = copy.deepcopy(student)
        options = RecoveryOptions(tokens=1536, lr=3e-3, batch=8, micro_batch=3, validate_every=3, patience=50)
        text = RandomText(teacher.config.vocab_size - 3)
        result = recover(student, teacher, text, is_decoder=is_decoder, options=options, batches=text.batches(8))
        assert result.validation_after < result.validation_before and result.tokens == 1536 and result.steps == 12
        assert min(loss for _, loss in result.history) == result.validation_after  # the best state is the one kept
        changed = any(
            not torch.equal(a, b) for a, b in zip(student.state_dict().values(), untouched.state_dict().values())
        )
        assert changed and not student.training


def test_top_k_distillation_reads_the_teachers_likeliest_tokens_only():
    teacher = torch.randn(2, 5, 50)
    mask = torch.ones(2, 5)
    top = teacher.topk(8, dim=-1).indices
    off_top = teacher.clone()
    off_top.scatter_(-1, teacher.topk(42, dim=-1, largest=False).indices, -20.0)  # only the tail differs
    assert distillation_loss((off_top,), (teacher,), mask, is_decoder=True, top_k=8).item() < 1e-6
    assert distillation_loss((off_top,), (teacher,), mask, is_decoder=True).item() > 1e-3  # the full KL sees it
    moved = teacher.clone()
    moved.scatter_add_(-1, top[..., :1], torch.full((2, 5, 1), 3.0))
    assert distillation_loss((moved,), (teacher,), mask, is_decoder=True, top_k=8).item() > 1e-3


def _dense_llama_pair():
    """A tiny Llama teacher, its unpruned student, and random text for them."""
    teacher = FAMILIES["llama"].model()
    student = prune(
        teacher,
        adapter_for(teacher).space(ffn_step=FFN_STEP).dense(),
        MagnitudeSource(adapter_for(teacher), ffn_step=FFN_STEP),
    )
    return teacher, student, RandomText(teacher.config.vocab_size - 3)


def test_the_optimisers_moments_are_freed_on_return(monkeypatch):
    """An optimiser sits in a reference cycle: what it holds would stay resident until the collector ran."""
    made = []

    class Recorded(torch.optim.AdamW):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(torch.optim, "AdamW", Recorded)
    teacher, student, text = _dense_llama_pair()
    options = RecoveryOptions(tokens=256, batch=8, validate_every=100)
    recover(student, teacher, text, is_decoder=True, options=options, batches=text.batches(8))
    assert len(made) == 1 and not made[0].state


def test_the_teachers_targets_come_a_validation_interval_ahead_and_its_pages_go_between(monkeypatch):
    """While the student trains, the teacher is not needed: its targets for the next steps are already formed."""
    from prunesearch.prune import _recover

    events, streamed = [], []

    @contextlib.contextmanager
    def releasing(layers):  # the teacher's layers hand their pages back as they run, the rest after
        streamed.append(list(layers))
        yield lambda module: events.append("release") or 0

    monkeypatch.setattr(_recover, "pages_released_as_run", releasing)
    target, loss = _recover._Distiller.target, _recover._Distiller.loss
    monkeypatch.setattr(_recover._Distiller, "target", lambda self, part: events.append("target") or target(self, part))
    monkeypatch.setattr(
        _recover._Distiller,
        "loss",
        lambda self, part, t, scale=None: (
            events.append("train" if scale else "validate") or loss(self, part, t, scale=scale)
        ),
    )
    teacher, student, text = _dense_llama_pair()
    options = RecoveryOptions(tokens=640, batch=8, micro_batch=8, validate_every=2, patience=50)
    recover(student, teacher, text, is_decoder=True, options=options, batches=text.batches(8))
    events = [e for e in events if e in ("target", "release", "train")]
    training = events[events.index("release") + 1 :]  # after the validation rows' targets
    assert training[:8] == ["target", "target", "release", "train", "train", "target", "target", "release"]
    assert all(layers == list(adapter_for(teacher).layers()) for layers in streamed)
    assert training.count("train") == 5 and training.count("target") == 5  # 640 tokens: five steps of 128, no more


def test_checkpointing_trains_the_same_student_and_leaves_the_layers_as_they_were():
    """Recomputing each layer's activations in the backward pass changes what is held, not what is learnt."""
    from prunesearch.prune._recover import _Distiller

    for family, is_decoder in (("bert", False), ("llama", True)):
        teacher, pruned = _half_pruned(family)
        part = next(RandomText(teacher.config.vocab_size - 3).batches(4))
        grads = []
        for checkpointing in (False, True):
            student = copy.deepcopy(pruned)
            options = RecoveryOptions(tokens=64, checkpointing=checkpointing)
            distiller = _Distiller(student, teacher, is_decoder=is_decoder, options=options)
            target, saved = distiller.target(part), []
            # what autograd keeps for the backward pass outside the recomputed layers (they keep their own)
            with torch.autograd.graph.saved_tensors_hooks(
                lambda t, saved=saved: saved.append(t.numel()) or t, lambda t: t
            ):
                loss = distiller.loss(part, target, scale=1.0)
            grads.append((loss, [p.grad for p in student.parameters() if p.grad is not None], sum(saved)))
            assert all("forward" not in vars(layer) for layer in adapter_for(student).layers())
        (plain, plain_grads, plain_saved), (recomputed, recomputed_grads, recomputed_saved) = grads
        assert recomputed == plain and len(recomputed_grads) == len(plain_grads) > 0, family
        assert recomputed_saved < plain_saved / 2, (family, recomputed_saved, plain_saved)
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain_grads, recomputed_grads)), family
    # by default a decoder recomputes (its activations are what a pass holds most of), an encoder does not
    assert RecoveryOptions().recomputes(is_decoder=True) and not RecoveryOptions().recomputes(is_decoder=False)
    assert not RecoveryOptions(checkpointing=False).recomputes(is_decoder=True)


def test_stepping_in_the_backward_pass_trains_the_same_student_and_leaves_no_gradient(monkeypatch):
    """A step of one pass updates each parameter as its gradient completes: the same AdamW, without the model's
    gradients held at once; the frozen token embeddings take no gradient and are trainable again afterwards."""
    from prunesearch.prune import _recover

    loss, grads_after_pass = _recover._Distiller.loss, []

    def recorded(self, part, target, scale=None):
        value = loss(self, part, target, scale=scale)
        if scale is not None:
            grads_after_pass.append(any(p.grad is not None for p in self.student.parameters()))
        return value

    monkeypatch.setattr(_recover._Distiller, "loss", recorded)
    for family, is_decoder in (("bert", False), ("llama", True)):
        teacher, pruned = _half_pruned(family)
        text = RandomText(teacher.config.vocab_size - 3)
        options = RecoveryOptions(tokens=384, lr=3e-3, batch=4, micro_batch=4, validate_every=100)
        students = []
        for in_backward in (True, False):
            student, grads_after_pass[:] = copy.deepcopy(pruned), []
            with monkeypatch.context() as m:
                m.setattr(_recover, "_head_trained", lambda *args, grouped=not in_backward: grouped)
                recover(student, teacher, text, is_decoder=is_decoder, options=options, batches=text.batches(4))
            students.append(student)
            assert grads_after_pass and set(grads_after_pass) == {not in_backward}, family
            assert all(p.requires_grad and p.grad is None for p in student.parameters()), family
            assert not any(p._post_accumulate_grad_hooks for p in student.parameters()), family
        stepped, grouped = (s.state_dict() for s in students)
        assert all(torch.equal(stepped[k], grouped[k]) for k in stepped), family


def test_a_decoders_trained_output_head_steps_after_the_whole_backward_pass():
    """A decoder's loss reaches its output head once per chunk of logits: trained, it cannot step in the backward."""
    from prunesearch.prune._recover import _head_trained, trained_only

    teacher, student = _half_pruned("llama")
    for embeddings in (True, False):
        with trained_only(student, embeddings=embeddings) as params:
            assert _head_trained(student, params) is embeddings
            assert student.get_input_embeddings().weight.requires_grad is embeddings
    assert student.get_input_embeddings().weight.requires_grad


def test_a_frozen_head_in_bf16_trains_the_same_student_and_reads_the_teachers_embeddings(monkeypatch):
    """Under bf16 autocast a decoder's frozen head is cast once, not once per chunk of logits, and its embeddings
    are read from the teacher's equal tensor: what is learnt is the same, and the student owns its weights after."""
    from prunesearch.prune import _precision, _recover

    for module in (_precision, _recover):  # autocast on any CPU (emulated where bf16 is not native)
        monkeypatch.setattr(module, "bf16_native", lambda device: True)
    teacher, pruned = _half_pruned("llama")
    text = RandomText(teacher.config.vocab_size - 3)
    options = RecoveryOptions(tokens=384, lr=3e-3, batch=4, validate_every=2, patience=50)
    teachers = teacher.get_input_embeddings().weight
    loss, students = _recover._Distiller.loss, []
    for shared in (True, False):
        student, trained_with = copy.deepcopy(pruned), set()
        embeddings = student.get_input_embeddings().weight

        def recorded(self, part, target, scale=None, trained_with=trained_with):
            if scale is not None:  # a training pass
                head, lookup = self.student.get_output_embeddings().weight, self.student.get_input_embeddings().weight
                trained_with.add((head.dtype, lookup.data_ptr() == teachers.data_ptr()))
            return loss(self, part, target, scale=scale)

        with monkeypatch.context() as m:
            m.setattr(_recover._Distiller, "loss", recorded)
            if not shared:
                m.setattr(_recover, "frozen_head_in_bf16", lambda *args, **kwargs: contextlib.nullcontext())
            recover(student, teacher, text, is_decoder=True, options=options, batches=text.batches(4))
        assert trained_with == ({(torch.bfloat16, True)} if shared else {(torch.float32, False)})
        head = student.get_output_embeddings().weight
        assert head is student.get_input_embeddings().weight is embeddings  # tied again, the same parameter
        assert not student.get_input_embeddings()._forward_hooks
        assert head.dtype == torch.float32 and head.data_ptr() != teachers.data_ptr() and torch.equal(head, teachers)
        students.append(student.state_dict())
    assert all(torch.equal(students[0][k], students[1][k]) for k in students[0])
