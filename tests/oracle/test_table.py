import numpy as np
import pytest

from prunesearch.errors import TableError
from prunesearch.models import LoadedModel
from prunesearch.oracle import LatencyTable, Predictor, profile_table
from prunesearch.space import adapter_for
from tests.space.tiny import FAMILIES, FFN_STEP


@pytest.fixture(scope="module")
def tiny_table():
    model = FAMILIES["bert"].model()
    loaded = LoadedModel(name="tiny-bert", model=model, tokenizer=None, source=None, weights_hash="abc")
    table = profile_table(loaded, batch=1, seq_len=16, threads=1, ffn_step=FFN_STEP, calibration_models=3, budget_s=0.05)
    return loaded, table


def test_profile_covers_every_level_with_provenance(tiny_table):
    loaded, table = tiny_table
    space = adapter_for(loaded.model).space(ffn_step=FFN_STEP)
    assert {(k, s) for k, s in zip(table.rows.kind, table.rows["size"])} == (
        {("base", 0)} | {("attn", h) for h in space.layers[0].heads[1:]} | {("ffn", w) for w in space.layers[0].ffn[1:]}
    )
    c = table.conditions
    assert (c.backend, c.batch, c.seq_len, c.threads, c.model_hash) == ("ort-cpu", 1, 16, 1, "abc")
    assert c.device and table.meta.calibration.n_models == 3 and table.meta.profiling_seconds > 0


def test_predictor_is_additive_and_vectorised(tiny_table):
    loaded, table = tiny_table
    space = adapter_for(loaded.model).space(ffn_step=FFN_STEP)
    pred = Predictor(table, space, calibrated=False)
    rng = np.random.default_rng(0)
    genomes = rng.integers(0, space.genome_upper + 1, size=(50, len(space.genome_upper)))
    loop = [
        table.time("base", 0) + sum(table.time("attn", l.heads) + table.time("ffn", l.ffn) for l in space.from_genome(g).layers)
        for g in genomes
    ]
    assert np.allclose(pred.latency_ms(genomes), loop)
    cal = Predictor(table, space)
    assert np.allclose(cal.latency_ms(genomes), table.meta.calibration.scale * np.array(loop) + table.meta.calibration.offset_ms)


def test_save_load_refuses_other_conditions_and_corruption(tiny_table, tmp_path):
    loaded, table = tiny_table
    path = table.save(tmp_path / "t.csv")
    again = LatencyTable.load(path, expect=table.conditions)
    assert again.rows.equals(table.rows)
    other = table.conditions.model_copy(update={"threads": 2, "device": "another CPU"})
    with pytest.raises(TableError, match="device: table .* threads: table 1, wanted 2.*--force"):
        LatencyTable.load(path, expect=other)
    assert LatencyTable.load(path, expect=other, force=True).conditions.threads == 1
    meta = path.with_suffix(".json").read_text()
    path.with_suffix(".json").write_text(meta.replace('"format": 2', '"format": 1'))
    with pytest.raises(TableError, match="format 1 .* re-profile"):
        LatencyTable.load(path)
    path.with_suffix(".json").write_text(meta)
    path.write_text(path.read_text()[:30])  # truncated CSV
    with pytest.raises(TableError, match="truncated or malformed"):
        LatencyTable.load(path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(TableError, match="corrupt table metadata"):
        LatencyTable.load(path)
    with pytest.raises(TableError, match="not found"):
        LatencyTable.load(tmp_path / "missing.csv")
