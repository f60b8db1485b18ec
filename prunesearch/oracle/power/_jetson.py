"""Jetson power rails: INA3221 monitors in sysfs, or the rail fields of `tegrastats` lines.

Energy is power integrated over time by the caller (rails report instantaneous power, not a counter).
The readers live in the bundle runner, which samples them on the board without prunesearch."""

from __future__ import annotations

from pathlib import Path

from prunesearch.errors import BackendUnavailableError
from prunesearch.standalone import run_bundle
from prunesearch.standalone.run_bundle import INA3221_GLOB, parse_tegrastats

__all__ = ["INA3221_GLOB", "parse_tegrastats", "read_ina3221"]


def read_ina3221(*, root: Path = Path("/"), pattern: str = INA3221_GLOB) -> dict[str, float]:
    """Power per labelled channel in mW = in{N}_input (mV) * curr{N}_input (mA) / 1000 (hwmon driver, JetPack 5+)."""
    rails = run_bundle.read_ina3221(root=root, pattern=pattern)
    if not rails:
        raise BackendUnavailableError(
            f"no INA3221 rails under {root / pattern}: run on a Jetson (JetPack 5+), "
            "or parse `tegrastats` output instead"
        )
    return rails
