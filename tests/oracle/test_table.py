import numpy as np
import pytest

from prunesearch import LoadedModel, Workload
from prunesearch.errors import TableError
from prunesearch.oracle import Conditions, LatencyTable, Predictor, profile_table
from prunesearch.oracle._fit import fit_calibration, smooth_rows
from prunesearch.space import adapter_for
from tests.conftest import FAST
from tests.oracle.tables import conditions as table_conditions
from tests.space.tiny import FAMILIES, FFN_STEP


@pytest.fixture(scope="module")
def tiny_table():
    model = FAMILIES["bert"].model()
    loaded = LoadedModel(name="tiny-bert", model=model, tokenizer=None, source=None, weights_hash="abc")
    table = profile_table(
        loaded, Conditions.here(loaded, Workload(seq_len=16), ffn_step=FFN_STEP), calibration_models=3, timing=FAST
    )
    return loaded, table


def test_profile_covers_every_level_with_provenance(tiny_table):
    loaded, table = tiny_table
    space = adapter_for(loaded.model).space(ffn_step=FFN_STEP)
    assert {(k, s) for k, s in zip(table.rows.kind, table.rows["size"])} == (
        {("base", 0)} | {("attn", h) for h in space.layers[0].heads[1:]} | {("ffn", w) for w in space.layers[0].ffn[1:]}
    )
    c = table.conditions
    assert (c.backend, c.batch, c.seq_len, c.threads, c.model_hash) == ("ort-cpu", 1, 16, 1, "abc")
    m = table.meta
    assert c.device and m.calibration.n_models == 3 and m.profiling_seconds > 0 and m.timing == FAST
    assert 0 < m.dense_p10_ms <= m.dense_ms <= m.dense_p90_ms and "spline" in m.fit
    assert (table.rows.se >= 0).all() and (table.rows.rounds >= FAST.min_rounds).all()


def test_predictor_is_additive_vectorised_and_scaled_by_the_reference(tiny_table):
    loaded, table = tiny_table
    space = adapter_for(loaded.model).space(ffn_step=FFN_STEP)
    pred = Predictor(table, space, calibrated=False)
    rng = np.random.default_rng(0)
    genomes = rng.integers(0, space.genome_upper + 1, size=(50, len(space.genome_upper)))
    loop = [
        table.cost("base", 0)
        + sum(table.cost("attn", l.heads) + table.cost("ffn", l.ffn) for l in space.from_genome(g).layers)
        for g in genomes
    ]
    assert np.allclose(pred.ratio(genomes), loop)
    assert np.allclose(pred.latency_ms(genomes), np.array(loop) * table.meta.dense_ms)
    cal = table.meta.calibration
    now = Predictor(table, space, reference_ms=7.0)  # the dense model measured now scales the milliseconds
    assert np.allclose(now.ratio(genomes), cal.scale * np.array(loop) + cal.offset)
    assert np.allclose(now.latency_ms(genomes), 7.0 * now.ratio(genomes)) and now.dense_ms == 7.0
    assert np.allclose(now.speedup(genomes), 1 / now.ratio(genomes))


def test_rows_are_smooth_and_monotone_yet_keep_a_real_step():
    sizes = np.arange(1, 13) * 128.0
    truth = 1e-4 * sizes
    rng = np.random.default_rng(0)
    se = np.full(12, 0.002)
    noisy = truth + rng.normal(0, 0.002, 12)
    noisy[4] -= 0.008  # one level measured in a quiet moment: 4 standard errors cheap
    fit = smooth_rows(sizes, noisy, se)
    assert np.all(np.diff(fit.rows) >= 0)
    assert abs(fit.rows[4] - truth[4]) < 0.004  # pulled back to within its error of its neighbours
    step = truth.copy()
    step[7:] += 0.02  # a kernel that really steps at one width, far beyond the noise
    fit = smooth_rows(sizes, step + rng.normal(0, 0.0005, 12), np.full(12, 0.0005))
    assert np.abs(fit.rows - step).max() < 0.003 and fit.chi2 > 10  # kept, and the misfit is reported
    assert np.all(fit.se > 0)


def test_a_calibration_that_would_break_small_models_is_fitted_through_the_origin():
    # the line a noisy profile once fitted: every model of 1-3x on it, the base (every block removed,
    # measured at 0.0186 of the dense model) predicted below zero
    additive = np.linspace(0.3, 1.0, 12)
    measured = 1.0228 * additive - 0.0219
    scale, offset, _ = fit_calibration(additive, measured, np.full(12, 0.003))
    assert (round(scale, 4), round(offset, 4)) == (1.0228, -0.0219)  # without the smallest model: kept
    scale, offset, _ = fit_calibration(additive, measured, np.full(12, 0.003), smallest=0.0186)
    assert offset == 0.0 and 0.98 < scale < 1.0 and scale * 0.0186 > 0


def test_save_load_refuses_other_conditions_and_corruption(tiny_table, tmp_path):
    loaded, table = tiny_table
    path = table.save(tmp_path / "t")  # without the suffix: t.csv and t.json, found the same way
    assert path == tmp_path / "t.csv" and (tmp_path / "t.json").is_file()
    again = LatencyTable.load(tmp_path / "t", expect=table.conditions)
    assert again.rows.equals(table.rows)
    other = table.conditions.model_copy(update={"threads": 2, "device": "another CPU"})
    with pytest.raises(TableError, match="device: table .* threads: table 1, wanted 2.*--force"):
        LatencyTable.load(path, expect=other)
    assert LatencyTable.load(path, expect=other, force=True).conditions.threads == 1
    meta = path.with_suffix(".json").read_text()
    path.with_suffix(".json").write_text(meta.replace('"format": 3', '"format": 2'))
    with pytest.raises(TableError, match="format 2 .* side by side .* re-profile"):
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


GPU = table_conditions(
    device="NVIDIA H100 80GB HBM3 (driver 550.54.15)",
    backend="tensorrt",
    backend_version="10.3.0",
    precision="fp16",
    platform={"driver": "550.54.15", "compute_capability": "9.0", "cuda": "12.4", "power_mode": "MAXN"},
)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"device": "NVIDIA A100-SXM4-80GB (driver 550.54.15)"}, "device"),
        ({"precision": "fp32"}, "precision"),
        ({"backend_version": "11.0.1"}, "backend_version"),
        ({"platform": GPU.platform | {"compute_capability": "8.0"}}, "platform"),
        ({"platform": GPU.platform | {"driver": "535.104.05"}}, "platform"),
        ({"platform": GPU.platform | {"cuda": "11.8"}}, "platform"),
        ({"platform": GPU.platform | {"power_mode": "15W"}}, "platform"),
    ],
)
def test_a_table_from_other_gpu_hardware_or_software_is_refused_unless_forced(change, named):
    wanted = GPU.model_copy(update=change)
    with pytest.raises(TableError, match=f"{named}: table .*--force"):
        GPU.require(wanted, source="the table")
    GPU.require(wanted, source="the table", force=True)


def test_a_minor_backend_version_is_the_same_table():
    GPU.require(GPU.model_copy(update={"backend_version": "10.7.0"}), source="the table")
