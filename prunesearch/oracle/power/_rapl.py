"""RAPL package energy from /sys/class/powercap: energy_uj is a counter that wraps at max_energy_range_uj."""

from __future__ import annotations

from pathlib import Path

from prunesearch.errors import BackendUnavailableError

POWERCAP = Path("/sys/class/powercap")


def rapl_delta_uj(start: int, end: int, max_range_uj: int) -> int:
    """Energy between two counter reads; one wrap-around between them is undone (reads must be < one wrap apart)."""
    return end - start if end >= start else end + max_range_uj + 1 - start


class RaplEnergy:
    """Sum of the top-level package domains (intel-rapl:N, not the :N:M subdomains, which they already include)."""

    def __init__(self, *, root: Path = POWERCAP) -> None:
        self.domains = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
        if not self.domains:
            raise BackendUnavailableError(
                f"no RAPL domains under {root}: needs an Intel/AMD CPU with the intel_rapl powercap driver loaded"
            )
        try:
            self.max_range = [int((d / "max_energy_range_uj").read_text()) for d in self.domains]
            self.names = [(d / "name").read_text().strip() for d in self.domains]
            self.read_uj()
        except PermissionError as err:
            raise BackendUnavailableError(
                f"cannot read {err.filename}: since Linux 5.10 energy_uj is root-only; run as root or "
                "`sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj`"
            ) from err

    def read_uj(self) -> list[int]:
        return [int((d / "energy_uj").read_text()) for d in self.domains]

    read = read_uj  # the EnergyMeter snapshot

    def energy_mj(self, start: list[int], end: list[int]) -> float:
        """Millijoules over all packages between two read_uj() snapshots."""
        return sum(rapl_delta_uj(s, e, m) for s, e, m in zip(start, end, self.max_range)) / 1000.0
