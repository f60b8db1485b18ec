"""What side-by-side timing is told and gives back: its options, one model's paired measurement, a run.

A shared machine's speed drifts (the same dense MiniLM measured 21.8 ms and 25.2 ms forty minutes
apart), so no absolute time from one moment is compared with one from another. Every model is
timed in rounds interleaved with a reference (the dense model), and what is kept is its time as a
fraction of the reference's in the same window (``run_bundle.time_paired``); absolute milliseconds
are that ratio times the reference measured alongside. ``measure.py`` runs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import (
    BaseModel,
    ConfigDict,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    computed_field,
    model_validator,
)

from prunesearch._workload import Workload
from prunesearch.standalone import run_bundle


class TimingOptions(BaseModel):
    """How long side-by-side timing runs (defaults: ``run_bundle.TIMING``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_rounds: PositiveInt = run_bundle.TIMING["min_rounds"]
    max_rounds: PositiveInt = run_bundle.TIMING["max_rounds"]
    #: seconds one block of runs lasts (3 runs at least)
    block_s: PositiveFloat = run_bundle.TIMING["block_s"]
    #: a model is settled once its ratio's standard error is below rel_se x ratio, or abs_se
    rel_se: PositiveFloat = run_bundle.TIMING["rel_se"]
    abs_se: PositiveFloat = run_bundle.TIMING["abs_se"]
    warmup: NonNegativeInt = run_bundle.TIMING["warmup"]
    #: graphs (file bytes) held open at once beside the reference; None: at most the reference's size
    memory_gb: PositiveFloat | None = run_bundle.TIMING["memory_gb"]
    seed: int = run_bundle.TIMING["seed"]

    @model_validator(mode="after")
    def _rounds(self) -> TimingOptions:
        if self.min_rounds > self.max_rounds:
            raise ValueError(f"min_rounds {self.min_rounds} exceeds max_rounds {self.max_rounds}")
        return self


#: what a Measurement computes from its ratio and writes beside it (export.json), never read back
_DERIVED = ("speedup", "speedup_low", "speedup_high", "latency_ms")


class Measurement(BaseModel):
    """One model timed side by side with the reference (the dense model), as ``run_bundle.summarise_ratios``
    gives it, whether timed here, in the clean child process or on a remote device: ``ratio`` = its time / the
    reference's (the median over paired rounds), ``se`` that median's standard error (``noise_se`` from the
    rounds' scatter, ``state_se`` from the machine's state, ``window_se`` from how the ratio moved between the
    run's first and second half), the rounds' own ratios and reference times, and the
    reference's milliseconds around it. The one shape a measurement has, from the timing child to export.json."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ratio: PositiveFloat
    se: NonNegativeFloat
    rounds: PositiveInt
    reference_ms: PositiveFloat
    noise_se: NonNegativeFloat = 0.0
    state_se: NonNegativeFloat = 0.0
    window_se: NonNegativeFloat = 0.0
    ratios: tuple[float, ...] = ()
    references_ms: tuple[float, ...] = ()
    runs_per_block: PositiveInt = 1
    #: energy per inference and the rails' mean power, where an energy counter was read
    energy_mj: float | None = None
    power_mw: dict[str, float] = {}

    @model_validator(mode="before")
    @classmethod
    def _without_derived(cls, data):
        return {k: v for k, v in data.items() if k not in _DERIVED} if isinstance(data, dict) else data

    @computed_field
    @property
    def speedup(self) -> float:
        return 1.0 / self.ratio

    @computed_field
    @property
    def speedup_low(self) -> float:
        """The slow end of the speed-up's 95% confidence interval."""
        return self.speedup_interval()[0]

    @computed_field
    @property
    def speedup_high(self) -> float:
        return self.speedup_interval()[1]

    @computed_field
    @property
    def latency_ms(self) -> float:
        return self.ratio * self.reference_ms

    def speedup_interval(self, z: float = 1.96) -> tuple[float, float]:
        """The speed-up's confidence interval (95% by default) from the ratio's."""
        return 1.0 / (self.ratio + z * self.se), 1.0 / max(self.ratio - z * self.se, 1e-12)

    @classmethod
    def pooled(cls, measurements: Sequence[Measurement]) -> Measurement:
        """One model's measurements from several windows as one: its rounds together, in the order they ran, so
        the between-window term sees how far it moved from one window to the next."""
        if len(measurements) == 1:
            return measurements[0]
        if not all(m.ratios and len(m.ratios) == len(m.references_ms) for m in measurements):
            raise ValueError("only measurements that keep their rounds can be pooled")
        energies = [m.energy_mj for m in measurements]
        return cls.model_validate(
            run_bundle.summarise_ratios(
                [r for m in measurements for r in m.ratios], [r for m in measurements for r in m.references_ms]
            )
            | {
                "runs_per_block": measurements[-1].runs_per_block,
                "energy_mj": None if None in energies else sum(energies) / len(energies),
            }
        )

    def describe(self) -> str:
        lo, hi = self.speedup_interval()
        return (
            f"{self.speedup:.3f}x (95% CI {lo:.3f}-{hi:.3f}x, {self.rounds} paired rounds), "
            f"{self.latency_ms:.3f} ms beside dense {self.reference_ms:.3f} ms"
        )


@dataclass(frozen=True)
class SideBySide:
    """Every model of one side-by-side run, and the reference as it ran through the window."""

    jobs: dict[str, Measurement]
    reference_ms: float
    reference_p10_ms: float
    reference_p90_ms: float
    seconds: float
    reference_energy_mj: float | None = None
    raw: dict = field(default_factory=dict, repr=False)

    def __getitem__(self, name: str) -> Measurement:
        return self.jobs[name]

    @property
    def drift(self) -> float:
        """How much the machine's speed moved during the run: reference p90 / p10 - 1."""
        return self.reference_p90_ms / self.reference_p10_ms - 1

    @classmethod
    def of(cls, results: Mapping) -> SideBySide:
        """From ``run_bundle.time_paired``'s (or a bundle's results.json's) dict."""
        ref = results["reference"]
        return cls(
            jobs={name: Measurement.model_validate(r) for name, r in results["jobs"].items()},
            reference_ms=ref["ms"],
            reference_p10_ms=ref["p10_ms"],
            reference_p90_ms=ref["p90_ms"],
            seconds=results.get("seconds", 0.0),
            reference_energy_mj=ref.get("energy_mj"),
            raw=dict(results),
        )


def timing_plan(workload: Workload, *, vocab: int, graphs: list[str], options: TimingOptions) -> dict:
    """The part of a bundle manifest ``run_bundle.py`` reads: the workload, what to time and how."""
    return {
        "workload": workload.workload().model_dump(),
        "vocab": vocab,
        "reference": "dense",
        "graphs": graphs,
        "timing": options.model_dump(),
    }
