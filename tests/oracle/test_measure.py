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


class _Session:
    """A stand-in ONNX Runtime session whose runs take scripted times (seconds)."""

    def __init__(self, durations):
        self.durations = iter(durations)

    def run(self, outputs, feeds):
        import time

        end = time.perf_counter() + next(self.durations)
        while time.perf_counter() < end:
            pass


def test_a_disturbed_attempt_is_measured_again_and_the_quietest_kept():
    from prunesearch.oracle.measure import time_session

    disturbed = [0.0016] * 12 + [0.0013] * 8  # the whole first attempt under varying load
    m = time_session(_Session([0.001] * 2 + disturbed + [0.001] * 40), {}, min_runs=20, max_runs=20, warmup=2)
    assert m.latency_ms == pytest.approx(1.0, rel=0.15) and m.runs == 20
