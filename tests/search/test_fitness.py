import pytest
import torch

from prunesearch.prune import MagnitudeSource, prune
from prunesearch.search import DistillationFitness
from prunesearch.space import adapter_for
from tests.space.tiny import FAMILIES, FFN_STEP


def _batch(vocab: int, rows: int = 8, seq: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(rows, seq, dtype=torch.long)
    mask[::2, seq // 2 :] = 0  # padded rows
    return {"input_ids": torch.randint(0, vocab, (rows, seq), generator=g), "attention_mask": mask}


def _fitness(model, *, is_decoder):
    source = MagnitudeSource(adapter_for(model), ffn_step=FFN_STEP)
    return DistillationFitness(
        model, source, _batch(model.config.vocab_size - 3), is_decoder=is_decoder, micro_batch=3
    ), source


def test_dense_has_zero_loss_and_pruning_costs():
    for name, is_decoder in (("bert", False), ("llama", True)):
        model = FAMILIES[name].model()
        fitness, source = _fitness(model, is_decoder=is_decoder)
        space = source.space
        dense = fitness(space.dense(), 10_000)
        assert abs(dense) < 1e-5
        light = space.from_genome(space.genome_upper // 2)
        heavy = space.from_genome(space.genome_upper // 4)
        assert fitness(heavy, 10_000) > fitness(light, 10_000) > 1e-4


def test_token_budget_uses_a_prefix():
    fitness, source = _fitness(FAMILIES["bert"].model(), is_decoder=False)
    config = source.space.from_genome(source.space.genome_upper // 2)
    assert fitness._rows(8) == 1 and fitness._rows(16) == 2 and fitness._rows(10_000) == 8  # real tokens count
    assert fitness(config, 16) != fitness(config, 10_000)


def test_training_aware_finetune_on_other_rows_lowers_the_loss_from_its_budget_on():
    for name, is_decoder in (("bert", False), ("llama", True)):
        model = FAMILIES[name].model()
        source = MagnitudeSource(adapter_for(model), ffn_step=FFN_STEP)
        vocab = model.config.vocab_size - 3
        batch, tuning = _batch(vocab), _batch(vocab, rows=16, seed=1)  # tuned on rows it is never scored on
        plain = DistillationFitness(model, source, batch, is_decoder=is_decoder, micro_batch=4)
        tuned = DistillationFitness(
            model,
            source,
            batch,
            is_decoder=is_decoder,
            micro_batch=4,
            finetune_steps=6,
            finetune_lr=1e-3,
            finetune_from_tokens=64,
            tuning=tuning,
        )
        config = source.space.from_genome(source.space.genome_upper // 2)
        assert tuned(config, 16) == plain(config, 16)  # below its budget: no fine-tune
        assert tuned(config, 10_000) < plain(config, 10_000)
        assert tuned(config, 10_000) == tuned(config, 10_000)  # reproducible, so stored trials stay valid
    with pytest.raises(ValueError, match="tuning rows apart"):
        DistillationFitness(model, source, batch, is_decoder=True, finetune_steps=2)


def test_local_executor_ships_the_real_fitness_once_and_matches_serial():
    from prunesearch.search._executor import LocalExecutor

    fitness, source = _fitness(FAMILIES["llama"].model(), is_decoder=True)
    space = source.space
    configs = [space.from_genome(space.genome_upper // d) for d in (1, 2, 4)]
    executor = LocalExecutor(workers=2)
    try:
        parallel = executor.map(fitness, configs, 10_000)
        pool = executor.pool
        assert executor.map(fitness, configs[:1], 10_000) == parallel[:1] and executor.pool is pool  # pool reused
    finally:
        executor.close()
    assert parallel == [fitness(c, 10_000) for c in configs]


@pytest.mark.parametrize("family", ["bert", "llama", "gpt2"])
def test_layer_by_layer_score_equals_the_pruned_model_scored_whole(family):
    """The search scores a config layer by layer; the model export writes is pruned whole."""
    model = FAMILIES[family].model()
    is_decoder = family != "bert"
    fitness, source = _fitness(model, is_decoder=is_decoder)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for divisor in (1, 2, 4):
        config = source.space.from_genome(source.space.genome_upper // divisor)
        rows = fitness._rows(10_000)
        whole = fitness._loss(fitness._whole(prune(model, config, source), len(fitness.parts)), rows)
        assert fitness(config, 10_000) == pytest.approx(whole, rel=1e-4, abs=1e-6)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the dense model is untouched


def test_top_k_kl_is_exact_over_the_whole_vocabulary_and_a_lower_bound_below_it():
    from prunesearch.prune._recover import TopK

    g = torch.Generator().manual_seed(0)
    teacher = torch.log_softmax(torch.randn(20, 50, generator=g) * 2, dim=-1)
    student = torch.log_softmax(torch.randn(20, 50, generator=g) * 2, dim=-1)
    exact = (teacher.exp() * (teacher - student)).sum(-1)
    everything = TopK.of(teacher, 50).kl(student, slice(None))
    coarse = TopK.of(teacher, 8).kl(student, slice(None))
    assert torch.allclose(everything, exact, atol=1e-4)  # the empty bucket adds rounding only
    assert (coarse <= exact + 1e-6).all() and (coarse > 0).all()  # a coarser partition never adds divergence


def test_scoring_in_another_precision_copies_the_model_and_agrees():
    """The device path (a GPU in bf16 where there is one), on the CPU: the caller's model stays fp32."""
    model = FAMILIES["llama"].model()
    fitness, source = _fitness(model, is_decoder=True)
    half = DistillationFitness(
        model, source, _batch(model.config.vocab_size - 3), is_decoder=True, micro_batch=3, dtype=torch.bfloat16
    )
    assert next(model.parameters()).dtype == torch.float32 and next(half.model.parameters()).dtype == torch.bfloat16
    config = source.space.from_genome(source.space.genome_upper // 2)
    assert half(config, 10_000) == pytest.approx(fitness(config, 10_000), rel=0.2)
    assert abs(half(source.space.dense(), 10_000)) < 1e-3
