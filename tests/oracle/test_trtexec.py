"""trtexec JSON parsers on samples WE WROTE in the documented export formats (not captured from a GPU)."""

import json

import pytest

from prunesearch.errors import BackendUnavailableError, TableError
from prunesearch.oracle.profilers.trtexec import parse_profile, parse_times, run_trtexec, trtexec_command


def test_parse_times_statistics(tmp_path):
    sample = [{"startEnqMs": i, "endEnqMs": i + 0.1, "startComputeMs": i, "endComputeMs": i + 1.0,
               "h2dMs": 0.0, "computeMs": 1.0 + i / 100, "d2hMs": 0.0, "latencyMs": 1.2 + i / 100}
              for i in range(11)]
    path = tmp_path / "times.json"
    path.write_text(json.dumps(sample))
    m = parse_times(path)
    assert (m.runs, m.median_ms) == (11, pytest.approx(1.05))
    assert m.p10_ms == pytest.approx(1.01) and m.p90_ms == pytest.approx(1.09)
    assert parse_times(path, key="latencyMs").median_ms == pytest.approx(1.25)


def test_parse_profile_and_bad_files(tmp_path):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps([{"count": 100},
                                {"name": "/attn/MatMul", "timeMs": 30.0, "averageMs": 0.3, "medianMs": 0.29, "percentage": 60},
                                {"name": "/ffn/Gemm", "timeMs": 20.0, "averageMs": 0.2, "medianMs": 0.21, "percentage": 40}]))
    assert parse_profile(path) == {"/attn/MatMul": 0.29, "/ffn/Gemm": 0.21}
    (tmp_path / "bad.json").write_text('[{"computeMs": 1.0}, {"oops": 2}')  # truncated
    with pytest.raises(TableError, match="exportTimes"):
        parse_times(tmp_path / "bad.json")
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(TableError, match="no inferences"):
        parse_times(tmp_path / "empty.json")


def test_command_flags_are_stable(tmp_path):
    cmd = trtexec_command(tmp_path / "m.onnx", times=tmp_path / "t.json", precision="fp16", shapes="input_ids:1x128")
    assert "--useCudaGraph" in cmd and "--fp16" in cmd and "--shapes=input_ids:1x128" in cmd
    assert "--fp16" not in trtexec_command(tmp_path / "m.onnx", times=tmp_path / "t.json", precision="fp32")


def test_missing_trtexec_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendUnavailableError, match="install TensorRT"):
        run_trtexec(tmp_path / "m.onnx", tmp_path)
