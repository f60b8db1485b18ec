import pytest

from prunesearch.errors import PruneSearchError
from prunesearch.models import load_model
from prunesearch.prune.calibration import DEFAULT_TEXT, load_calibration


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
    assert DEFAULT_TEXT.stat().st_size > 100_000
