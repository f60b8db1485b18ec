"""Side-by-side timing (run_bundle.time_paired) on a simulated shared machine whose speed drifts."""

import weakref

import numpy as np
import pytest

from prunesearch.oracle import Measurement, SideBySide
from prunesearch.standalone import run_bundle


class Machine:
    """A shared machine WE SIMULATE: its speed drifts by +-15% over the run and bursts of load slow whole
    stretches of runs; every model's time is its own cost times the machine's current slowness."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.clock = 0.0  # simulated seconds

    def slowness(self) -> float:
        drift = 1.0 + 0.15 * np.sin(self.clock)
        burst = 1.3 if int(self.clock * 3) % 11 == 0 else 1.0
        return drift * burst

    def runner(self, cost_ms: float, opened: list | None = None) -> "SimulatedRunner":
        return SimulatedRunner(self, cost_ms, opened)


class SimulatedRunner(run_bundle.CallRunner):
    def __init__(self, machine: Machine, cost_ms: float, opened: list | None) -> None:
        super().__init__(step=None)
        self.machine, self.cost_ms, self.opened = machine, cost_ms, opened
        if opened is not None:
            opened.append(self)

    def block(self, runs: int) -> list:
        times = []
        for _ in range(runs):
            ms = self.cost_ms * self.machine.slowness() * (1 + 0.01 * self.machine.rng.standard_normal())
            self.machine.clock += ms / 1e3
            times.append(ms)
        return times

    def close(self) -> None:
        if self.opened is not None:
            self.opened.remove(self)


TRUE = {"light": 0.3, "half": 0.5, "heavy": 0.9}


def test_ratios_hold_while_the_machine_drifts_and_absolute_times_do_not():
    machine = Machine()
    dense = machine.runner(20.0)
    results = run_bundle.time_paired(
        dense,
        {name: (lambda r=r: machine.runner(20.0 * r)) for name, r in TRUE.items()},
        min_rounds=8,
        max_rounds=24,
        block_s=0.08,
    )
    for name, ratio in TRUE.items():
        m = Measurement.model_validate(results["jobs"][name])
        assert m.ratio == pytest.approx(ratio, rel=0.01), name
        assert abs(m.ratio - ratio) <= 3 * m.se + 1e-4, name  # the stated error covers the truth
        low, high = m.speedup_interval(z=3)
        assert low <= 1 / ratio <= high
    side = SideBySide.of(results)
    assert side.drift > 0.1  # the machine really moved: a dense time from one moment says little about another
    alone = []
    for moment in (4.7, 1.6):  # the same model timed alone at two moments
        machine.clock = moment
        alone.append(np.median(machine.runner(20.0).block(20)))
    assert alone[1] / alone[0] - 1 > 0.2


def test_a_job_is_timed_until_its_error_is_small_and_no_longer():
    machine = Machine(seed=1)
    quiet = lambda cost: SimulatedRunner(machine, cost, None)  # noqa: E731
    machine.slowness = lambda: 1.0  # a quiet machine: 1% noise per run only
    results = run_bundle.time_paired(quiet(10.0), {"a": lambda: quiet(5.0)}, min_rounds=4, max_rounds=30, rel_se=0.004)
    assert results["jobs"]["a"]["rounds"] == 4
    machine.slowness = lambda: 1.0 + 0.2 * machine.rng.random()  # every run disturbed independently
    noisy = run_bundle.time_paired(quiet(10.0), {"a": lambda: quiet(5.0)}, min_rounds=4, max_rounds=12, rel_se=0.0001)
    assert noisy["jobs"]["a"]["rounds"] == 12


def test_runners_are_held_in_groups_within_the_memory_limit():
    machine = Machine(seed=2)
    machine.slowness = lambda: 1.0
    opened, most = [], []

    def job(cost: float):
        def open_runner():
            runner = machine.runner(cost, opened)
            most.append(len(opened))
            return runner

        return open_runner

    jobs = {f"j{i}": job(1.0 + i) for i in range(5)}
    results = run_bundle.time_paired(
        machine.runner(10.0), jobs, sizes={n: 2**30 for n in jobs}, memory_gb=2, min_rounds=3, max_rounds=3
    )
    assert max(most) == 2 and not opened  # two graphs at a time, all closed at the end
    assert list(results["jobs"]) == list(jobs)
    assert results["jobs"]["j4"]["ratio"] == pytest.approx(0.5, rel=0.03)


def test_by_default_a_group_holds_the_reference_size_and_is_freed_before_the_next_opens():
    """The timing child holds the reference and at most its size in other graphs, and a group's runners are freed,
    not only closed, before the next group opens (SmolLM2's decode window: 2,700 MB -> 1,530 MB)."""
    machine = Machine(seed=3)
    opened, earlier = [], []

    def job(cost: float):
        def open_runner():
            assert not opened  # one at a time: two would exceed the reference's size
            assert all(ref() is None for ref in earlier)  # nothing holds an earlier group's runner
            runner = machine.runner(cost, opened)
            earlier.append(weakref.ref(runner))
            return runner

        return open_runner

    jobs = {f"j{i}": job(1.0 + i) for i in range(3)}
    run_bundle.time_paired(
        machine.runner(10.0),
        jobs,
        sizes={n: 0.6 * 2**30 for n in jobs},
        reference_size=2**30,
        min_rounds=3,
        max_rounds=3,
    )
    assert len(earlier) == 3 and not opened


def test_median_standard_error():
    rng = np.random.default_rng(0)
    values = rng.normal(1.0, 0.01, size=(2000, 25))
    se = np.array([run_bundle.median_se(v) for v in values])
    spread = np.std(np.median(values, axis=1))
    assert np.median(se) == pytest.approx(spread, rel=0.2)  # calibrated on normal noise
    assert run_bundle.median_se([1.0, 1.0, 1.0, 5.0]) == 0.0  # one disturbed round moves nothing
