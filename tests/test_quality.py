import math

import torch

from prunesearch._pooling import mean_pool
from prunesearch._quality import embedding_cosine, embeddings, kl_to_dense, perplexity
from tests.space.tiny import FAMILIES, VOCAB


def _batch() -> dict:
    ids = torch.randint(3, VOCAB, (5, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, -4:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).item() == 2.0


def test_dense_against_itself_is_perfect_and_micro_batching_does_not_matter():
    model, batch = FAMILIES["bert"].model(), _batch()
    dense = embeddings(model, batch)
    assert torch.allclose(embeddings(model, batch, micro_batch=2), dense, atol=1e-5)
    assert math.isclose(embedding_cosine(model, dense, batch), 1.0, abs_tol=1e-5)


def test_perplexity_and_kl_on_a_decoder():
    model, batch = FAMILIES["llama"].model(), _batch()
    with torch.no_grad():
        logits = model(**batch).logits
    ppl = perplexity(model, batch)
    assert 1.0 < ppl < 10 * VOCAB
    assert abs(kl_to_dense(model, logits, batch)) < 1e-5
    other = FAMILIES["llama"].model()
    with torch.no_grad():
        next(other.parameters()).add_(0.5)
    assert kl_to_dense(other, logits, batch) > 1e-4
