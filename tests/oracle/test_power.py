"""Power readers on fake sysfs trees and recorded-format tegrastats lines (formats from the kernel/NVIDIA docs)."""

from pathlib import Path

import pytest

from prunesearch.errors import BackendUnavailableError
from prunesearch.oracle.power import NvmlEnergy, RaplEnergy, parse_tegrastats, rapl_delta_uj, read_ina3221


def _rapl_tree(root: Path, energies: list[int], max_range: int = 262143328850) -> None:
    for i, e in enumerate(energies):
        d = root / f"intel-rapl:{i}"
        d.mkdir(parents=True)
        (d / "name").write_text(f"package-{i}\n")
        (d / "energy_uj").write_text(f"{e}\n")
        (d / "max_energy_range_uj").write_text(f"{max_range}\n")
        sub = root / f"intel-rapl:{i}:0"  # subdomain (core): included in the package, must not be summed
        sub.mkdir()
        (sub / "energy_uj").write_text("999\n")
        (sub / "max_energy_range_uj").write_text(f"{max_range}\n")


def test_rapl_wraps_and_sums_packages(tmp_path):
    _rapl_tree(tmp_path, [1_000, 5_000], max_range=10_000)
    rapl = RaplEnergy(root=tmp_path)
    assert rapl.names == ["package-0", "package-1"]
    start = rapl.read_uj()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("3000\n")  # +2000 uJ
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("999\n")  # wrapped: 10000-5000+1+999 = 6000 uJ
    assert rapl.energy_mj(start, rapl.read_uj()) == pytest.approx(8.0)
    assert rapl_delta_uj(9_990, 10, 10_000) == 21


def test_rapl_missing_says_what_is_needed(tmp_path):
    with pytest.raises(BackendUnavailableError, match="intel_rapl"):
        RaplEnergy(root=tmp_path)


def test_ina3221_hwmon_rails(tmp_path):
    hw = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    hw.mkdir(parents=True)
    for n, (label, mv, ma) in enumerate([("VDD_IN", 5000, 1000), ("VDD_CPU_GPU_CV", 5000, 200)], start=1):
        (hw / f"in{n}_label").write_text(label + "\n")
        (hw / f"in{n}_input").write_text(f"{mv}\n")
        (hw / f"curr{n}_input").write_text(f"{ma}\n")
    (hw / "in4_label").write_text("sum of shunt voltages\n")  # no current channel: skipped
    assert read_ina3221(root=tmp_path) == {"VDD_IN": 5000.0, "VDD_CPU_GPU_CV": 1000.0}
    with pytest.raises(BackendUnavailableError, match="tegrastats"):
        read_ina3221(root=tmp_path / "empty")


def test_tegrastats_lines():
    # Written by us in the documented formats (not captured on a device): JetPack 5 Orin and JetPack 4 Nano.
    orin = (
        "11-24-2026 16:00:00 RAM 2200/7620MB (lfb 2x4MB) CPU [5%@729,2%@729] GR3D_FREQ 0% "
        "cpu@45.5C VDD_IN 5078mW/5078mW VDD_CPU_GPU_CV 1189mW/1189mW VDD_SOC 1426mW/1426mW"
    )
    assert parse_tegrastats(orin) == {"VDD_IN": 5078.0, "VDD_CPU_GPU_CV": 1189.0, "VDD_SOC": 1426.0}
    nano = (
        "RAM 1500/3964MB CPU [3%@102,off,off,off] GR3D_FREQ 0%@76 POM_5V_IN 3116/3116 POM_5V_GPU 0/0 POM_5V_CPU 391/391"
    )
    assert parse_tegrastats(nano) == {"POM_5V_IN": 3116.0, "POM_5V_GPU": 0.0, "POM_5V_CPU": 391.0}


def test_nvml_energy_counter():
    try:
        nvml = NvmlEnergy()
    except BackendUnavailableError as err:
        pytest.skip(f"no NVML here: {err}")
    a = nvml.read_mj()
    assert nvml.energy_mj(a, nvml.read_mj()) >= 0
