"""The remote-device bundle: emitted for a tiny BERT, run here by its own script, imported back."""

import ast
import json
import subprocess
import sys
import time
from pathlib import Path

import onnxruntime as ort
import pytest

from prunesearch import LoadedModel, Workload
from prunesearch.errors import TableError
from prunesearch.oracle import ENERGY, Conditions, LatencyTable, cpu_name, emit_bundle, import_results, profile_table
from prunesearch.standalone import run_bundle
from tests.conftest import FAST
from tests.space.tiny import FAMILIES, FFN_STEP

WORKLOAD = Workload(seq_len=16)
SHAPE = dict(ffn_step=FFN_STEP, calibration_models=3)


@pytest.fixture(scope="module")
def loaded():
    return LoadedModel(
        name="tiny-bert", model=FAMILIES["bert"].model(), tokenizer=None, source=None, weights_hash="abc"
    )


@pytest.fixture(scope="module")
def results(loaded, tmp_path_factory):
    """results.json of the bundle run by run_bundle.py in a fresh interpreter, as on a board."""
    bundle = emit_bundle(loaded, tmp_path_factory.mktemp("bundle"), WORKLOAD, timing=FAST, **SHAPE)
    run = subprocess.run(
        [sys.executable, "-I", str(bundle / "run_bundle.py"), "--max-rounds", "3"],
        cwd=bundle.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "calibration-02" in run.stdout and "x reference" in run.stdout
    return bundle / "results.json"


def test_runner_needs_only_numpy_and_onnxruntime():
    tree = ast.parse(Path(run_bundle.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported - set(sys.stdlib_module_names) == {"numpy", "onnxruntime"}


def test_imported_table_matches_a_local_profile(loaded, results, tmp_path):
    table = import_results(results)
    local = profile_table(
        loaded, Conditions.here(loaded, WORKLOAD, ffn_step=FFN_STEP), timing=FAST, calibration_models=3
    )
    again = LatencyTable.load(table.save(tmp_path / "t.csv"))
    assert list(again.rows.columns) == list(local.rows.columns)
    assert list(zip(again.rows.kind, again.rows["size"])) == list(zip(local.rows.kind, local.rows["size"]))
    c = again.conditions
    assert c.model_dump() == local.conditions.model_dump()  # run here: the same device, backend and version
    assert (c.device, c.backend, c.backend_version, c.model_hash) == (cpu_name(), "ort-cpu", ort.__version__, "abc")
    assert again.meta.calibration.n_models == 3 and "run_bundle.py" in again.meta.notes
    assert (again.rows.rounds == 3).all() and again.cost("base", 0) > 0 and again.meta.dense_ms > 0
    assert (
        data_of(results)["shared_thread_pool"] is True
    )  # one intra-op pool: no idle session spins beside the timed one


def data_of(results):
    return json.loads(results.read_text())


def test_energy_rows_when_power_was_recorded(results, tmp_path):
    data = data_of(results)
    for i, job in enumerate(data["manifest"]["jobs"]):
        if job["kind"] != "dense":
            data["jobs"][job["name"]].update(energy_mj=10.0 + i, power_mw={"VDD_IN": 5000.0})
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    rows = LatencyTable.load(import_results(path).save(tmp_path / "e.csv")).rows.set_index(["kind", "size"])
    attn = next(i for i, j in enumerate(data["manifest"]["jobs"]) if j["kind"] == "attn")
    assert rows.loc[("base", 0), ENERGY] == 10.0
    assert rows.loc[("attn", data["manifest"]["jobs"][attn]["size"]), ENERGY] == pytest.approx(
        attn / data["manifest"]["n_layers"]
    )


def test_corrupt_or_incomplete_results_are_refused(results, tmp_path):
    text = results.read_text()
    path = tmp_path / "results.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(TableError, match="truncated or corrupt bundle results .* re-run run_bundle.py"):
        import_results(path)
    data = json.loads(text)
    del data["jobs"]["ffn-32"]
    path.write_text(json.dumps(data))
    with pytest.raises(TableError, match="no timing for 1 of 12 graphs \\(ffn-32\\); re-run"):
        import_results(path)
    with pytest.raises(TableError, match="not found"):
        import_results(tmp_path / "missing.json")


def test_cli_import_writes_the_table_or_one_line_error(results, tmp_path, monkeypatch, capsys):
    from prunesearch.cli import main

    broken = tmp_path / "broken.json"
    broken.write_text(results.read_text()[:100])
    for source, code in ((results, 0), (broken, 2)):
        monkeypatch.setattr(
            sys, "argv", ["prunesearch", "profile", "--import", str(source), "--out", str(tmp_path / "t.csv")]
        )
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == code
    assert LatencyTable.load(tmp_path / "t.csv").conditions.device == cpu_name()
    err = capsys.readouterr().err
    assert "wrote" in err and "error:" in err and "Traceback" not in err


class _Session:
    def run(self, outputs, feeds):
        time.sleep(0.002)


def test_energy_from_sampled_ina3221_rails(tmp_path):
    hw = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    hw.mkdir(parents=True)
    for n, (label, mv, ma) in enumerate([("VDD_IN", 5000, 1000), ("VDD_SOC", 5000, 200)], start=1):
        (hw / f"in{n}_label").write_text(label)
        (hw / f"in{n}_input").write_text(str(mv))
        (hw / f"curr{n}_input").write_text(str(ma))
    assert run_bundle.power_source(root=tmp_path) == "ina3221"
    sampler = run_bundle.PowerSampler("ina3221", root=tmp_path)
    got = run_bundle.measure_energy(_Session(), {}, seconds=0.1, sampler=sampler)
    assert got["power_mw"] == {"VDD_IN": 5000.0, "VDD_SOC": 1000.0}
    assert 5.0 <= got["energy_mj"] <= 15.0  # VDD_IN (the total) x ~2 ms per run
