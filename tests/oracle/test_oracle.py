"""The oracle: a table's predictions, corrected by whole configs measured beside the dense model."""

from __future__ import annotations

import numpy as np
import pytest

from prunesearch.oracle import Correction, Measurement, Oracle
from prunesearch.space import Space
from tests.oracle.tables import conditions, hand_table

SPACE = Space.uniform(n_layers=4, n_heads=4, ffn_width=512, head_dim=8, hidden_size=32, ffn_step=128)
#: a table WRITTEN BY HAND: a base of 0.1, per layer 0.025 a head and 0.03125 per 128 FFN channels (dense: 1)
COSTS = {"base": 0.1, "attn": 0.025, "ffn": 0.03125 / 128}


def _oracle(*, energy: bool = False) -> Oracle:
    cost = lambda k, s: COSTS["base"] if k == "base" else COSTS[k] * s  # noqa: E731
    table = hand_table(SPACE, conditions(device="a bench"), cost=cost, energy=cost if energy else None, dense_ms=16.0)
    return Oracle(table, SPACE)


def _measured(oracle: Oracle, genomes: np.ndarray, factor, *, energy: float | None = None, stage="search"):
    """One window's measurements WRITTEN BY HAND: each config ``factor`` (one, or one per config) x the table."""
    table = oracle.table_ratio(genomes) * factor
    energies = oracle.table_energy_mj(genomes)
    measurements = [
        Measurement(
            ratio=float(r),
            se=0.002,
            rounds=12,
            reference_ms=16.0,
            energy_mj=None if energy is None else float(e) * energy,
        )
        for r, e in zip(table, energies if energies is not None else table)
    ]
    return oracle.records(genomes, measurements, stage=stage)


def test_without_measurements_the_oracle_is_the_table_with_its_prior_spread():
    oracle = _oracle()
    genomes = np.random.default_rng(0).integers(0, SPACE.genome_upper + 1, size=(20, 8))
    assert np.allclose(oracle.ratio(genomes), oracle.table_ratio(genomes))
    spread = oracle.ratio_spread(genomes)
    assert (spread > 0.02).all() and (spread < 0.2).all()


def test_measured_configs_correct_the_prediction_where_they_are_and_the_dense_model_stays_exact():
    oracle = _oracle()
    rng = np.random.default_rng(1)
    near = np.array([[2, 2, 1, 1, 1, 1, 3, 2]] * 3) + rng.integers(0, 2, size=(3, 8))
    oracle.add(_measured(oracle, near, 1.05))  # the device runs these 5% slower than the table says
    corrected = oracle.ratio(near) / oracle.table_ratio(near)
    assert corrected == pytest.approx(np.full(3, 1.05), abs=0.01)
    assert (oracle.ratio_spread(near) < 0.02).all()  # measured: certain, up to the window term
    dense = SPACE.genome_upper[None, :]
    assert oracle.ratio(dense)[0] == pytest.approx(1.0, abs=2e-3)  # the reference is exactly itself
    assert oracle.measurements[0].corrected_ratio == pytest.approx(oracle.measurements[0].table_ratio)


def test_a_bias_of_the_device_is_learnt_for_configs_not_measured():
    """The device saves 8% more than the table says for every share removed (a config that removes half runs 4%
    faster than predicted): configs measured in two windows teach it for others."""
    oracle = _oracle()
    genomes = np.random.default_rng(2).integers(1, SPACE.genome_upper, size=(12, 8))

    def truth(g: np.ndarray) -> np.ndarray:
        return 1 - 0.08 * (1 - g / SPACE.genome_upper).mean(1)

    for window in (genomes[:4], genomes[4:8]):
        oracle.add(_measured(oracle, window, truth(window)))
    ratio = oracle.ratio(genomes[8:]) / oracle.table_ratio(genomes[8:])
    assert ratio == pytest.approx(truth(genomes[8:]), abs=0.01)


def test_energy_is_corrected_by_measured_energies_apart_from_time():
    oracle = _oracle(energy=True)
    genomes = np.random.default_rng(3).integers(1, SPACE.genome_upper + 1, size=(6, 8))
    oracle.add(_measured(oracle, genomes, 1.0, energy=1.1))
    assert oracle.energy_mj(genomes) / oracle.table_energy_mj(genomes) == pytest.approx(np.full(6, 1.1), abs=0.02)
    assert oracle.ratio(genomes) == pytest.approx(oracle.table_ratio(genomes), rel=0.01)


def test_windows_take_their_numbers_in_the_order_they_ran():
    oracle = _oracle()
    genomes = np.array([[1] * 8, [2] * 8])
    oracle.add(_measured(oracle, genomes, 1.0, stage="check"))
    oracle.add(_measured(oracle, genomes, 1.0))
    assert [m.window for m in oracle.measurements] == [0, 0, 1, 1] and oracle.next_window == 2


def test_an_empty_fit_is_the_prior():
    correction = Correction(SPACE).fit(np.zeros((0, 8)), np.zeros(0), np.zeros(0), np.zeros(0))
    mean, sd = correction.predict(np.ones((2, 8), dtype=np.int64))
    assert (mean == 0).all() and (sd > 0).all()
