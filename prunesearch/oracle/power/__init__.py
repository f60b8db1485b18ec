"""Energy readers: RAPL (Intel/AMD CPU package counters), NVML (GPU total energy), Jetson INA3221 rails."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from prunesearch.oracle.power._jetson import parse_tegrastats, read_ina3221
from prunesearch.oracle.power._nvml import NvmlEnergy
from prunesearch.oracle.power._rapl import RaplEnergy, rapl_delta_uj


class EnergyMeter(Protocol):
    """An energy counter: ``read()`` a snapshot, ``energy_mj(start, end)`` between two snapshots."""

    def read(self) -> Any: ...

    def energy_mj(self, start: Any, end: Any) -> float: ...


def energy_per_run(step: Callable[[], None], meter: EnergyMeter, *, seconds: float) -> float:
    """Millijoules per inference: ``step`` run back to back for ``seconds`` (a counter updates every few
    tens of milliseconds, so a reading needs a run that long), the counter's delta over the runs."""
    step()  # warm
    start, runs, began = meter.read(), 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - began < seconds:
        step()
        runs += 1
    return meter.energy_mj(start, meter.read()) / runs


__all__ = [
    "EnergyMeter",
    "NvmlEnergy",
    "RaplEnergy",
    "energy_per_run",
    "parse_tegrastats",
    "rapl_delta_uj",
    "read_ina3221",
]
