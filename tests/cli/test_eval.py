"""``prunesearch eval``: the quality users measure, through the real CLI entry point."""

import json

import pytest

from tests.cli.test_bad_input import cli
from tests.test_quality import SIMILAR, _pairs_file


def test_eval_scores_an_encoder_on_sentence_pairs(capsys, tmp_path, monkeypatch):
    pairs = _pairs_file(tmp_path, SIMILAR, header="sentence1,sentence2,score\n")
    code, err = cli(["eval", "minilm", "--sts", pairs, "--json"], capsys, tmp_path, monkeypatch)
    result = json.loads(next(line for line in err.splitlines() if line.startswith("{")))
    assert code == 0 and result["metric"] == "sts_spearman" and result["pairs"] == 12 and result["value"] > 0.7


@pytest.mark.slow
def test_eval_measures_a_decoders_perplexity(capsys, tmp_path, monkeypatch):
    from prunesearch.prune._calibration import DEFAULT_FILES

    code, _ = cli(["eval", "smollm2", "--text", DEFAULT_FILES[0], "--tokens", "512"], capsys, tmp_path, monkeypatch)
    assert code == 0
    code, err = cli(["eval", "smollm2", "--sts", _pairs_file(tmp_path, SIMILAR)], capsys, tmp_path, monkeypatch)
    assert code == 2 and "is a decoder: give --text" in err
