"""Jetson power rails: INA3221 monitors in sysfs, or the rail fields of `tegrastats` lines.

Energy is power integrated over time by the caller (rails report instantaneous power, not a counter)."""

from __future__ import annotations

import re
from pathlib import Path

from prunesearch.errors import BackendUnavailableError

INA3221_GLOB = "sys/bus/i2c/drivers/ina3221*/*/hwmon/hwmon*"
# "VDD_IN 5078mW/5078mW" (JetPack 5+) or "POM_5V_IN 3116/3116" (JetPack 4): current/average, milliwatts.
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*(?:IN|CPU|GPU|SOC|CV|DDR|SYS)[A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?")


def parse_tegrastats(line: str) -> dict[str, float]:
    """Instantaneous power per rail in mW from one tegrastats line."""
    return {name: float(now) for name, now, _avg in _RAIL.findall(line)}


def read_ina3221(*, root: Path = Path("/"), pattern: str = INA3221_GLOB) -> dict[str, float]:
    """Power per labelled channel in mW = in{N}_input (mV) * curr{N}_input (mA) / 1000 (hwmon driver, JetPack 5+)."""
    rails: dict[str, float] = {}
    for hwmon in sorted(root.glob(pattern)):
        for label in sorted(hwmon.glob("in*_label")):
            n = label.name[2:-len("_label")]
            volt, curr = hwmon / f"in{n}_input", hwmon / f"curr{n}_input"
            if volt.exists() and curr.exists():
                rails[label.read_text().strip()] = int(volt.read_text()) * int(curr.read_text()) / 1000.0
    if not rails:
        raise BackendUnavailableError(
            f"no INA3221 rails under {root / pattern}: run on a Jetson (JetPack 5+), or parse `tegrastats` output instead")
    return rails
