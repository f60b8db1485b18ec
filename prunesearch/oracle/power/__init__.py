"""Energy readers: RAPL (Intel/AMD CPU package counters), NVML (GPU total energy), Jetson INA3221 rails."""

from prunesearch.oracle.power.jetson import parse_tegrastats, read_ina3221
from prunesearch.oracle.power.nvml import NvmlEnergy
from prunesearch.oracle.power.rapl import RaplEnergy, rapl_delta_uj

__all__ = ["NvmlEnergy", "RaplEnergy", "parse_tegrastats", "rapl_delta_uj", "read_ina3221"]
