"""The profiler interface: registry, torch-cpu timing and tables (which must work here), GPU backends (skipped
with their own reason where absent), and energy prediction from a table's energy_mj column."""

import json
import sys

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from prunesearch import LoadedModel, Workload
from prunesearch._spec import DeviceSpec
from prunesearch.cli import main
from prunesearch.errors import BackendUnavailableError, PruneSearchError
from prunesearch.graph import export_onnx, graph_feeds, graph_plan
from prunesearch.oracle import (
    Conditions,
    LatencyTable,
    Predictor,
    cpu_name,
    profile_table,
    time_configs,
)
from prunesearch.oracle.profilers import PROFILERS, profiler_for
from prunesearch.oracle.profilers._base import gpu_name
from prunesearch.oracle.profilers._trtexec import parse_version
from prunesearch.prune import prune
from prunesearch.space import adapter_for
from prunesearch.standalone.run_bundle import feeds_for, ort_session
from tests.conftest import FAST
from tests.oracle.tables import conditions as table_conditions
from tests.oracle.tables import hand_table
from tests.space.tiny import FAMILIES, FFN_STEP, configs

GPU_BACKENDS = ["ort-cuda", "ort-tensorrt", "tensorrt", "trtexec", "torch-cuda"]


def tiny(family: str = "bert") -> LoadedModel:
    model = FAMILIES[family].model()
    model.config.architectures = [type(model).__name__]  # as a saved checkpoint names it (LoadedModel.is_decoder)
    return LoadedModel(name=f"tiny-{family}", model=model, tokenizer=None, source=None, weights_hash="abc")


def test_registry_knows_every_backend_and_specs_refuse_others():
    assert {"ort-cpu", "ort-cuda", "ort-tensorrt", "tensorrt", "trtexec", "torch-cpu", "torch-cuda"} <= set(PROFILERS)
    assert all(profiler_for(name).name == name for name in PROFILERS)
    with pytest.raises(PruneSearchError, match="unknown backend 'tpu': choose from ort-cpu, .*trtexec"):
        profiler_for("tpu")
    with pytest.raises(ValidationError, match="unknown backend 'tpu': choose from"):
        DeviceSpec(backend="tpu")


def test_a_precision_the_backend_does_not_run_is_refused():
    with pytest.raises(PruneSearchError, match="backend 'ort-cpu' times fp32 only, not fp16"):
        Conditions.here(tiny(), Workload(precision="fp16", seq_len=16), ffn_step=FFN_STEP)


@pytest.mark.parametrize("family, phase", [("bert", None), ("llama", "decode")])  # llama: one KV-cache decode step
def test_torch_cpu_times_the_module_itself_side_by_side(family, phase):
    profiler = profiler_for("torch-cpu")
    profiler.check()
    assert (profiler.version(), profiler.device()) == (torch.__version__, cpu_name())
    loaded = tiny(family)
    workload = (
        Workload(backend="torch-cpu", phase="decode", cache_len=4)
        if phase
        else Workload(backend="torch-cpu", seq_len=16)
    )
    c = Conditions.here(loaded, workload, ffn_step=FFN_STEP)
    threads = torch.get_num_threads()
    measured = time_configs(loaded, {"mixed": configs(loaded.model)["mixed"]}, conditions=c, options=FAST)
    assert 0 < measured["mixed"].ratio < 1.5 and measured["mixed"].rounds >= FAST.min_rounds
    assert measured.reference_ms > 0
    assert torch.get_num_threads() == threads  # the process's setting is restored


def test_torch_cpu_table_predicts_a_measured_whole_model():
    loaded = tiny()
    workload = Workload(backend="torch-cpu", seq_len=16)
    table = profile_table(
        loaded, Conditions.here(loaded, workload, ffn_step=FFN_STEP), calibration_models=3, timing=FAST
    )
    c = table.conditions
    assert (c.backend, c.backend_version, c.device, c.phase) == ("torch-cpu", torch.__version__, cpu_name(), "encode")
    assert table.meta.calibration.n_models == 3 and "torch-cpu" in table.meta.notes
    space = adapter_for(loaded.model).space(ffn_step=FFN_STEP)
    config = configs(loaded.model)["mixed_tail"]
    measured = time_configs(loaded, {"tail": config}, conditions=c, options=FAST)["tail"]
    predicted = Predictor(table, space).config_ratio(config)
    # loose: a shared 2-core machine and sub-millisecond eager forwards
    assert predicted == pytest.approx(measured.ratio, rel=0.25)


def test_graph_feeds_match_an_onnx_runtime_session(tmp_path):
    model = prune(FAMILIES["llama"].model(), configs(FAMILIES["llama"].model())["mixed"], ffn_step=FFN_STEP)
    path = export_onnx(model, tmp_path / "step.onnx", batch=1, seq_len=1, cache_len=3)
    workload = Workload(batch=2, seq_len=1, phase="decode", cache_len=5)
    ours = graph_feeds(path, workload=workload, vocab=97)
    theirs = feeds_for(ort_session(path, threads=1), plan=graph_plan(workload, vocab=97))
    assert list(ours) == list(theirs) and all(np.array_equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_backend_times_a_tiny_model(backend, tmp_path):
    profiler = profiler_for(backend)
    try:
        profiler.check()
    except BackendUnavailableError as err:
        assert f"backend {backend!r} is not available here" in str(err) and "install" in str(err)
        pytest.skip(str(err))
    assert "driver" in profiler.device() and profiler.version()
    loaded = tiny()
    c = Conditions.here(loaded, Workload(backend=backend, seq_len=16), ffn_step=FFN_STEP)
    measured = time_configs(loaded, {"mixed": configs(loaded.model)["mixed"]}, conditions=c, options=FAST)
    assert measured["mixed"].ratio > 0 and measured.reference_ms > 0


def test_missing_backend_exits_4_with_one_line(capsys, tmp_path, monkeypatch):
    backend = next((b for b in GPU_BACKENDS if _unavailable(b)), None)
    if backend is None:
        pytest.skip("every backend is available here")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["prunesearch", "profile", "--model", "no-such-model", "--backend", backend])
    with pytest.raises(SystemExit) as done:
        main()
    err = capsys.readouterr().err.strip()
    assert done.value.code == 4 and len(err.splitlines()) == 1 and "install" in err, err  # before the model loads


def _unavailable(backend: str) -> bool:
    try:
        profiler_for(backend).check()
    except BackendUnavailableError:
        return True
    return False


def test_trtexec_version_and_gpu_name_from_their_tools(tmp_path, monkeypatch):
    assert parse_version("&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec --help") == "10.3.0"
    assert parse_version("[TensorRT v110001]") == "11.0.1" and parse_version("[TensorRT v8601]") == "8.6.1"
    assert parse_version("no banner") == "unknown"
    smi = tmp_path / "nvidia-smi"  # a stand-in WE WROTE in nvidia-smi's documented csv,noheader format
    smi.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 550.54.15'\necho 'NVIDIA H100 80GB HBM3, 550.54.15'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py absent: the command line answers
    assert gpu_name.__wrapped__() == "NVIDIA H100 80GB HBM3 (driver 550.54.15)"
    smi.unlink()
    with pytest.raises(BackendUnavailableError, match="nvidia-smi"):
        gpu_name.__wrapped__()


@pytest.fixture
def energy_table():
    """A table WE WROTE with an energy_mj column (as a bundle with power rails gives), tiny-BERT grid."""
    space = adapter_for(FAMILIES["bert"].model()).space(ffn_step=FFN_STEP)
    conditions = table_conditions(
        device="Jetson AGX Orin",
        backend="ort-cuda",
        backend_version="x",
        seq_len=16,
        model="tiny-bert",
        ffn_step=FFN_STEP,
    )
    costs = {"base": (0.1, 5.0), "attn": (0.01, 0.5), "ffn": (0.001, 0.02)}  # (share of dense, mJ) per unit
    table = hand_table(
        space, conditions, cost=lambda k, s: costs[k][0] * max(s, 1), energy=lambda k, s: costs[k][1] * max(s, 1)
    )
    return table, space


def test_energy_is_predicted_additively_from_the_energy_column(energy_table, tmp_path, capsys, monkeypatch):
    table, space = energy_table
    config = configs(FAMILIES["bert"].model())["mixed"]  # (0, 0), (1 head, 16), (0, 48)
    genome = space.to_genome(config)
    assert Predictor(table, space).energy_mj(genome)[0] == pytest.approx(5.0 + 0.5 * 1 + 0.02 * (16 + 48))
    genomes = np.stack([space.to_genome(c) for c in configs(FAMILIES["bert"].model()).values()])
    loop = [5.0 + sum(0.5 * l.heads + 0.02 * l.ffn for l in space.from_genome(g).layers) for g in genomes]
    assert np.allclose(Predictor(table, space).energy_mj(genomes), loop)
    without = LatencyTable(table.rows.drop(columns="energy_mj"), table.meta)
    assert Predictor(without, space).energy_mj(genome) is None

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(config.to_dict()))
    path = LatencyTable.load(table.save(tmp_path / "e.csv")).save(
        tmp_path / "e.csv"
    )  # the column survives a round trip
    for extra, check in (
        (["--json"], lambda out, err: json.loads(out)["energy_mj"] == pytest.approx(5.5 + 0.02 * 64)),
        ([], lambda out, err: "6.780 mJ per inference" in err),
    ):  # the console writes to stderr
        monkeypatch.setattr(sys, "argv", ["prunesearch", "predict", "--table", str(path), "--config", str(cfg), *extra])
        with pytest.raises(SystemExit) as done:
            main()
        printed = capsys.readouterr()
        assert done.value.code == 0 and check(printed.out, printed.err), printed
    without.save(tmp_path / "n.csv")
    monkeypatch.setattr(
        sys, "argv", ["prunesearch", "predict", "--table", str(tmp_path / "n.csv"), "--config", str(cfg), "--json"]
    )
    with pytest.raises(SystemExit):
        main()
    assert "energy_mj" not in json.loads(capsys.readouterr().out)
