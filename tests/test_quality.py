import math

import pytest
import torch

from prunesearch import mean_pool
from prunesearch._quality import dense_reference, embedding_cosine, embeddings, kl_to_dense, perplexity
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
        logits = model(**batch).logits[:, :-1].float()
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch["input_ids"][:, 1:], reduction="none")
    real = batch["attention_mask"][:, 1:]
    reference = dense_reference(model, batch, micro_batch=2)
    logits = reference  # the dense model's own distribution, top-k over the whole (tiny) vocabulary
    ppl = perplexity(model, batch)
    assert ppl == pytest.approx(math.exp(float((nll * real).sum() / real.sum())), rel=1e-5)
    assert 1.0 < ppl < 10 * VOCAB
    assert abs(kl_to_dense(model, logits, batch)) < 1e-5
    other = FAMILIES["llama"].model()
    with torch.no_grad():
        next(other.parameters()).add_(0.5)
    assert kl_to_dense(other, logits, batch) > 1e-4


def _pairs_file(tmp_path, rows, *, header="", sep=","):
    path = tmp_path / "pairs.csv"
    path.write_text(header + "\n".join(sep.join(map(str, r)) for r in rows) + "\n")
    return path


SIMILAR = [
    ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
    ("A woman is slicing an onion.", "A woman cuts an onion.", 4.5),
    ("A dog runs in the park.", "A dog is running through a park.", 4.6),
    ("Two children are reading books.", "Kids read books together.", 4.0),
    ("The stock market fell sharply today.", "Shares dropped a lot today.", 3.9),
    ("A cat sleeps on the sofa.", "The weather is cold in winter.", 0.2),
    ("A chef cooks pasta.", "The train leaves at noon.", 0.0),
    ("He bought a new car.", "Birds migrate south for the winter.", 0.1),
    ("The phone is ringing.", "A phone rings loudly.", 4.2),
    ("She is swimming in the lake.", "A man is painting a fence.", 0.4),
    ("People are dancing at a party.", "Guests dance at the celebration.", 4.1),
    ("The sun sets over the sea.", "Computers need electricity.", 0.3),
]


def test_sentence_pairs_read_csv_tsv_and_a_header_and_refuse_what_is_not_pairs(tmp_path):
    from prunesearch import SentencePairs
    from prunesearch.errors import PruneSearchError

    pairs = SentencePairs.read(_pairs_file(tmp_path, SIMILAR, header="sentence1,sentence2,score\n"))
    assert len(pairs.gold) == 12 and pairs.first[0] == SIMILAR[0][0] and pairs.name == "sts pairs.csv"
    tsv = SentencePairs.read(_pairs_file(tmp_path, SIMILAR, sep="\t"))
    assert list(tsv.gold) == [r[2] for r in SIMILAR]
    for bad, match in (
        ([("a", "b")] * 12, "2 columns"),
        ([*SIMILAR, ("x", "y", "high")], "not a number"),
        (SIMILAR[:3], "10 or more"),
    ):
        with pytest.raises(PruneSearchError, match=match):
            SentencePairs.read(_pairs_file(tmp_path, bad))
    with pytest.raises(PruneSearchError, match="not found"):
        SentencePairs.read(tmp_path / "missing.csv")


def test_sts_spearman_of_a_real_encoder_follows_the_gold_scores(tmp_path):
    from prunesearch import SentencePairs, load_model, spearman, sts_spearman

    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    loaded = load_model("minilm")
    pairs = SentencePairs.read(_pairs_file(tmp_path, SIMILAR))
    assert sts_spearman(loaded.model, loaded.tokenizer, pairs) > 0.7
    shuffled = SentencePairs(path=pairs.path, first=pairs.first, second=pairs.second[::-1], gold=pairs.gold)
    assert sts_spearman(loaded.model, loaded.tokenizer, shuffled) < 0.5
