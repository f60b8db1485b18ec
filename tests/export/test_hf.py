"""write_export: HF folder + ONNX + export.json that reload and agree with torch; TensorRT fallback."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest
import torch

from prunesearch import Config, Workload
from prunesearch import _io as io
from prunesearch.errors import BackendUnavailableError, PruneSearchError
from prunesearch.export import MANIFEST, parse_formats, read_manifest, write_export
from prunesearch.graph import build_engine, export_onnx, input_profiles, trtexec_command
from prunesearch.prune import MagnitudeSource, prune
from prunesearch.space import adapter_for
from tests.space.tiny import FAMILIES, FFN_STEP


@pytest.fixture
def bert():
    fam = FAMILIES["bert"]
    model = fam.model()
    n = model.config.num_hidden_layers
    config = Config.from_dict({"layers": [{"heads": 2, "ffn": 32 * (i % 3)} for i in range(n)]})
    source = MagnitudeSource(adapter_for(model), ffn_step=FFN_STEP)  # stands in for a level database
    return SimpleNamespace(name="tiny-bert", model=model, tokenizer=None), config, fam, source


def test_hf_and_onnx_export_reload_and_manifest(tmp_path, bert):
    loaded, config, fam, source = bert
    manifest = write_export(loaded, config, tmp_path / "out", source=source, formats=["hf", "onnx"])
    out = tmp_path / "out"
    assert {"model.safetensors", "arch.json", "model.onnx", MANIFEST} <= {p.name for p in out.iterdir()}
    assert manifest.config == config.to_dict() and manifest.formats == ["hf", "onnx"]
    assert manifest.table is None and manifest.predicted == {} and manifest.measured is None
    assert manifest.params == sum(p.numel() for p in prune(loaded.model, config, source).parameters())
    assert manifest.size_mb == pytest.approx(manifest.params * 4 / 1e6)
    assert manifest.onnx_max_abs_diff is not None and manifest.onnx_max_abs_diff < 1e-4
    assert read_manifest(out) == manifest
    assert json.loads((out / MANIFEST).read_text())["config"]["layers"][0] == {"heads": 2, "ffn": 0}
    reloaded = io.load(out)  # the export folder itself reloads, without the source checkpoint
    batch = fam.inputs(torch.Generator().manual_seed(0))
    with torch.no_grad():
        expect = prune(loaded.model, config, source)(**batch).last_hidden_state
        torch.testing.assert_close(reloaded(**batch).last_hidden_state, expect)


def test_unwritable_output_and_corrupt_manifest(tmp_path, bert):
    loaded, config, _, source = bert
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PruneSearchError, match="cannot write to output folder"):
        write_export(loaded, config, blocker / "out", source=source, formats=["hf"])
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(PruneSearchError, match="corrupt or older export manifest"):
        read_manifest(tmp_path)
    with pytest.raises(PruneSearchError, match="holds no export.json"):
        read_manifest(tmp_path / "nowhere")


def test_parse_formats():
    assert parse_formats("hf, onnx") == ["hf", "onnx"]
    for bad in ("hf,pt", ""):
        with pytest.raises(PruneSearchError, match="choose from hf, onnx, tensorrt, gguf"):
            parse_formats(bad)


def test_tensorrt_missing_names_the_trtexec_command(tmp_path, bert):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorrt is installed: the fallback message is not reachable")
    loaded, config, _, source = bert
    graph = export_onnx(prune(loaded.model, config, source), tmp_path / "m.onnx", batch=8, seq_len=16)
    workload = Workload(batch=8, seq_len=16, phase="encode", inputs="tokens")
    with pytest.raises(BackendUnavailableError) as err:
        build_engine(graph, tmp_path / "m.plan", workload=workload, vocab=97)
    message = str(err.value)
    assert "pip install tensorrt" in message and "\n" not in message
    profiles = input_profiles(graph, workload=workload, vocab=97)
    assert trtexec_command(graph, tmp_path / "m.plan", profiles=profiles) in message
    assert "--stronglyTyped" in message and "input_ids:8x16" in message


def test_a_decode_engine_profiles_its_cache_length(tmp_path):
    llama = FAMILIES["llama"].model()
    model = prune(llama, Config.uniform(llama.config.num_hidden_layers, heads=3, ffn=64), ffn_step=FFN_STEP)
    graph = export_onnx(model, tmp_path / "step.onnx", batch=1, seq_len=1, cache_len=8)
    profiles = input_profiles(
        graph, workload=Workload(phase="decode", seq_len=1, cache_len=8, inputs="tokens"), vocab=97
    )
    key = profiles["past.0.key"]
    assert key[0][2] == 1 and key[1][2] == 8 and key[2][2] == 16  # one cached token up to twice the table's
    assert profiles["attention_mask"] == ((1, 2), (1, 9), (1, 17)) and profiles["input_ids"][0] == (1, 1)


class _FakeTrt:
    """Just enough of the tensorrt module to record what serialize_network asks the builder for."""

    def __init__(self, version: str) -> None:
        self.__version__ = version
        self.calls: dict = {"shapes": []}
        self.Logger = type("Logger", (), {"WARNING": 0, "__init__": lambda s, level: None})
        self.NetworkDefinitionCreationFlag = SimpleNamespace(STRONGLY_TYPED=1)
        calls = self.calls
        network = SimpleNamespace(
            num_inputs=2, get_input=lambda i: SimpleNamespace(name=["input_ids", "attention_mask"][i])
        )
        config = SimpleNamespace(add_optimization_profile=lambda p: None)
        profile = SimpleNamespace(set_shape=lambda name, *shapes: calls["shapes"].append((name, shapes)))

        def create_network(flags):
            calls["network_flags"] = flags
            return network

        builder = SimpleNamespace(
            create_network=create_network,
            create_builder_config=lambda: config,
            create_optimization_profile=lambda: profile,
            build_serialized_network=lambda n, c: b"engine",
        )
        self.Builder = lambda logger: builder
        self.OnnxParser = lambda n, logger: SimpleNamespace(parse=lambda data: True, num_errors=0)


@pytest.mark.parametrize("version", ["10.13.0", "11.1.0"])
def test_tensorrt_python_api_builds_strongly_typed_on_10_and_11(version, tmp_path, monkeypatch, bert):
    fake = _FakeTrt(version)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    loaded, config, _, source = bert
    graph = export_onnx(prune(loaded.model, config, source), tmp_path / "m.onnx", batch=8, seq_len=16)
    workload = Workload(batch=8, seq_len=16, phase="encode", inputs="tokens")
    assert build_engine(graph, tmp_path / "m.plan", workload=workload, vocab=97).read_bytes() == b"engine"
    # 10.x: strongly typed on request (bit 1 << STRONGLY_TYPED); 11 is strongly typed always and takes no flag
    assert fake.calls["network_flags"] == (0 if version.startswith("11") else 1 << 1)
    assert fake.calls["shapes"] == [(n, ((8, 16),) * 3) for n in ("input_ids", "attention_mask")]
