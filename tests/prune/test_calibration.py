import pytest
import torch

from prunesearch import load_model
from prunesearch.errors import PruneSearchError
from prunesearch.prune._calibration import DEFAULT_FILES, OUT_OF_DOMAIN, load_calibration


@pytest.fixture(scope="module")
def tokenizer():
    return load_model("minilm").tokenizer


def test_splits_are_disjoint_deterministic_and_prefixes(tokenizer):
    a = load_calibration(tokenizer, seed=0)
    b = load_calibration(tokenizer, seed=0)
    assert a.fingerprint == b.fingerprint
    assert not set(a.calib_paragraphs) & set(a.heldout_paragraphs)
    small, big = a.calib(1024)["input_ids"], a.calib(4096)["input_ids"]
    assert small.shape == (8, 128) and (big[:8] == small).all()
    assert (a.calib(2048)["input_ids"] == b.calib(2048)["input_ids"]).all()
    assert small[0, 0].item() == tokenizer.cls_token_id and small[0, -1].item() == tokenizer.sep_token_id
    assert load_calibration(tokenizer, seed=1).fingerprint != a.fingerprint
    assert len(a.heldout_sentences(200)["input_ids"]) == 200


def test_user_files_and_bad_input(tokenizer, tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("\n".join(f"Sentence number {i} talks about pruning heads and channels." for i in range(200)))
    assert load_calibration(tokenizer, files=[mine]).fingerprint != load_calibration(tokenizer).fingerprint
    with pytest.raises(PruneSearchError, match="not found"):
        load_calibration(tokenizer, files=[tmp_path / "missing.txt"])
    short = tmp_path / "short.txt"
    short.write_text("one line\n")
    with pytest.raises(PruneSearchError, match="too short"):
        load_calibration(tokenizer, files=[short])
    with pytest.raises(PruneSearchError, match="tokens"):
        load_calibration(tokenizer).calib(10**8)
    assert all(f.stat().st_size > 100_000 for f in [*DEFAULT_FILES, OUT_OF_DOMAIN])


def test_text_rows_are_separate_padded_texts_and_budgets_count_real_tokens(tokenizer):
    texts = load_calibration(tokenizer, rows="texts")
    assert texts.fingerprint != load_calibration(tokenizer).fingerprint
    batch = texts.calib(4096)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    lengths = mask.sum(1)
    assert lengths.sum() >= 4096 and lengths[:-1].sum() < 4096  # the fewest rows holding the budget
    assert lengths.min() < 64 < lengths.max() <= 128  # varied lengths, like the sentences users embed
    assert (ids[:, 0] == tokenizer.cls_token_id).all()
    assert (ids[torch.arange(len(ids)), lengths - 1] == tokenizer.sep_token_id).all()
    assert (ids[mask == 0] == tokenizer.pad_token_id).all()
    small = texts.calib(1024)
    assert (ids[: len(small["input_ids"]), : small["input_ids"].shape[1]] == small["input_ids"]).all()
    with pytest.raises(PruneSearchError, match="choose 'chunks'"):
        load_calibration(tokenizer, rows="sentences")


def test_training_validation_and_heldout_rows_never_overlap(tokenizer):
    texts = load_calibration(tokenizer, rows="texts")
    rows = lambda batch: {tuple(r[m.bool()].tolist()) for r, m in zip(batch["input_ids"], batch["attention_mask"])}  # noqa: E731
    validation = rows(texts.validation(2048))
    training = rows(texts.training(8192, held_back=2048))
    assert validation and training and not validation & training
    assert not rows(texts.heldout(4096)) & (validation | training)  # reported quality never trains or stops training
    scored = rows(texts.calib(4096))
    assert not scored & rows(texts.training(2048, held_back=2048, skip=4096))  # tuning rows apart from scored ones
    many = texts.training(10**6, held_back=2048)  # more than it holds: the rows cycle
    assert int(many["attention_mask"].sum()) >= 10**6


def test_a_text_stream_reads_block_by_block_cycles_and_mixes_with_the_calibration_rows(tokenizer, tmp_path):
    from prunesearch.prune._calibration import TextStream, first_tokens, mixed_rows, token_batches

    mine = tmp_path / "mine.txt"
    mine.write_text("# a header line\n" + "\n".join(f"Line {i} says something quite ordinary here." for i in range(40)))
    stream = TextStream(tokenizer, [mine], seq_len=32, rows="texts", block=8)
    rows = [r for _, r in zip(range(200), stream)]  # more rows than the file holds: it cycles
    assert len(rows) == 200 and all(r[0] == tokenizer.cls_token_id and len(r) <= 32 for r in rows)
    assert all(tokenizer.decode(r).count("header") == 0 for r in rows)
    calibration = load_calibration(tokenizer, rows="texts")
    own = calibration.training_rows(held_back=4096)
    mixed = [r for _, r in zip(range(100), mixed_rows(calibration, iter(rows), share=0.25, held_back=4096))]
    assert sum(r in own for r in mixed) == 25  # a quarter from the calibration split, spread evenly
    assert not any(r in own for r in mixed[1::4][:10])
    batches = first_tokens(token_batches(iter(rows), batch=16, pad=0), 1000)
    assert sum(int(b["attention_mask"].sum()) for b in batches) >= 1000 and all(
        len(b["input_ids"]) == 16 for b in batches
    )
    with pytest.raises(PruneSearchError, match="not found"):
        TextStream(tokenizer, [tmp_path / "missing.txt"])


def test_a_text_stream_of_several_files_takes_rows_from_each_in_turn(tokenizer, tmp_path):
    from prunesearch.prune._calibration import TextStream

    big, small = tmp_path / "big.txt", tmp_path / "small.txt"
    big.write_text("\n".join(f"Apple number {i} sits on the kitchen table today." for i in range(600)))
    small.write_text("\n".join(f"Zebra number {i} runs across the open plain fast." for i in range(12)))
    stream = TextStream(tokenizer, [big, small], seq_len=32, rows="texts", block=64)
    rows = [tokenizer.decode(r) for _, r in zip(range(40), stream)]
    assert all("apple" in r for r in rows[0::2]) and all("zebra" in r for r in rows[1::2])  # small cycles alone
    empty, tiny = tmp_path / "empty.txt", tmp_path / "tiny.txt"
    empty.write_text("# only a header\n")
    tiny.write_text("\n".join("Hi there." for _ in range(12)))
    with pytest.raises(PruneSearchError, match="too short"):  # each file on its own, before any training
        TextStream(tokenizer, [big, empty])
    with pytest.raises(PruneSearchError, match="too little text"):
        next(iter(TextStream(tokenizer, [tiny], seq_len=64, rows="chunks")))
