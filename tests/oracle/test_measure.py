import numpy as np
import pytest

from prunesearch.oracle.measure import summarise


def test_latency_is_the_quietest_round_and_ignores_a_burst_of_interference():
    rng = np.random.default_rng(0)
    quiet = 10.0 + rng.normal(0, 0.05, 100)
    disturbed = quiet.copy()
    disturbed[20:80] += 1.0  # a 60-run burst: three of five rounds slowed, the overall median moves
    clean, noisy = summarise(quiet), summarise(disturbed)
    assert clean.latency_ms == pytest.approx(10.0, abs=0.05)
    assert noisy.latency_ms == pytest.approx(clean.latency_ms, abs=0.05)
    assert noisy.median_ms > 10.5 and noisy.runs == 100
    assert clean.p10_ms <= clean.median_ms <= clean.p90_ms


def test_few_runs_still_summarise():
    m = summarise([2.0, 1.0, 3.0])
    assert (m.latency_ms, m.median_ms, m.runs) == (2.0, 2.0, 3)
