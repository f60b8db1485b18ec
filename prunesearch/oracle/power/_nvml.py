"""GPU energy from NVML's total-energy counter (millijoules since driver load; Volta and newer)."""

from __future__ import annotations

from prunesearch.errors import BackendUnavailableError


class NvmlEnergy:
    def __init__(self, *, index: int = 0) -> None:
        try:
            import pynvml
        except ImportError as err:
            raise BackendUnavailableError(
                "NVML energy needs nvidia-ml-py: `pip install nvidia-ml-py` (and an NVIDIA driver)"
            ) from err
        try:
            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self.device = pynvml.nvmlDeviceGetName(self._handle)
            self.read_mj()
        except pynvml.NVMLError as err:
            raise BackendUnavailableError(
                f"NVML cannot read GPU {index} energy ({err}): needs an NVIDIA driver and a Volta or newer GPU"
            ) from err

    def read_mj(self) -> int:
        return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))

    read = read_mj  # the EnergyMeter snapshot

    def energy_mj(self, start: int, end: int) -> float:
        return float(end - start)  # 64-bit counter: no wrap in practice
