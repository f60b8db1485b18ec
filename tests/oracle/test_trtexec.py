"""trtexec: its JSON parser on samples WE WROTE in the documented --exportTimes format (not captured from a GPU),
and the fixed command lines."""

import json

import pytest

from prunesearch.errors import BackendUnavailableError, TableError
from prunesearch.oracle.profilers._trtexec import parse_times, run_trtexec, trtexec_command


def test_parse_times_reads_each_inference(tmp_path):
    sample = [
        {
            "startEnqMs": i,
            "endEnqMs": i + 0.1,
            "startComputeMs": i,
            "endComputeMs": i + 1.0,
            "h2dMs": 0.0,
            "computeMs": 1.0 + i / 100,
            "d2hMs": 0.0,
            "latencyMs": 1.2 + i / 100,
        }
        for i in range(11)
    ]
    path = tmp_path / "times.json"
    path.write_text(json.dumps(sample))
    assert parse_times(path) == pytest.approx([1.0 + i / 100 for i in range(11)])
    assert parse_times(path, key="latencyMs")[0] == pytest.approx(1.2)
    (tmp_path / "bad.json").write_text('[{"computeMs": 1.0}, {"oops": 2}')  # truncated
    with pytest.raises(TableError, match="exportTimes"):
        parse_times(tmp_path / "bad.json")
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(TableError, match="no inferences"):
        parse_times(tmp_path / "empty.json")


def test_command_flags_are_stable(tmp_path):
    build = trtexec_command(tmp_path / "m.onnx", shapes="input_ids:1x128", save_engine=tmp_path / "m.plan")
    assert build[:3] == ["trtexec", f"--onnx={tmp_path / 'm.onnx'}", "--stronglyTyped"] and "--skipInference" in build
    run = trtexec_command(tmp_path / "m.plan", times=tmp_path / "t.json", iterations=40, shapes="input_ids:1x128")
    assert f"--loadEngine={tmp_path / 'm.plan'}" in run and "--iterations=40" in run and "--useCudaGraph" in run
    assert f"--exportTimes={tmp_path / 't.json'}" in run
    for flags in (build, run):  # TensorRT 11 removed the precision flags: the graph's types decide
        assert not {"--fp16", "--bf16", "--int8", "--best"} & set(flags)


def test_missing_trtexec_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendUnavailableError, match="install TensorRT"):
        run_trtexec(tmp_path / "m.onnx")
