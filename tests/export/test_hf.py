"""write_export: HF folder + ONNX + export.json that reload and agree with torch; run picks; TensorRT fallback."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from prunesearch import io
from prunesearch.config import Config
from prunesearch.errors import BackendUnavailableError, PruneSearchError
from prunesearch.export.manifest import MANIFEST, parse_formats, read_manifest
from prunesearch.export.pick import limits_for, measured_pick, pick_candidates
from prunesearch.export.write import write_export
from prunesearch.graph.onnx import export_onnx
from prunesearch.graph.tensorrt import build_engine, input_profiles, trtexec_command
from prunesearch.objectives import Constraint, parse_constraints
from prunesearch.oracle import PairedMeasurement, SideBySide
from prunesearch.prune.apply import MagnitudeSource, prune
from prunesearch.space import adapter_for
from prunesearch.workload import Workload
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


def test_limits_and_candidates():
    trials = pd.DataFrame(
        {
            "tokens": [512, 2048, 2048, 2048],
            "latency_ms": [1.0, 2.0, 3.0, 4.0],  # predicted, with the dense model at 8 ms
            "speedup": [8.0, 4.0, 8 / 3, 2.0],
            "params": [10, 20, 30, 40],
            "loss": [0.0, 0.5, 0.2, 0.1],  # the 512-token loss must not win: budgets differ
        }
    )
    target = [Constraint(objective="speedup", limit=2.0)]
    assert limits_for("fastest", run_constraints=target) is None
    assert pick_candidates(trials, None).latency_ms.tolist() == [1.0]
    assert limits_for("best", run_constraints=target) == target
    assert pick_candidates(trials, target).latency_ms.tolist() == [4.0, 3.0, 2.0]
    assert pick_candidates(trials, limits_for("latency<=2.5", run_constraints=target)).latency_ms.tolist() == [2.0]
    assert pick_candidates(trials, limits_for("speedup >= 3", run_constraints=target)).latency_ms.tolist() == [2.0]
    assert pick_candidates(trials, limits_for("speedup>=2, params<=30", run_constraints=target)).params.tolist() == [
        30,
        20,
    ]
    with pytest.raises(PruneSearchError, match="no evaluated config is predicted within latency_ms <= 0.5 ms"):
        pick_candidates(trials, parse_constraints("latency<=0.5"))
    with pytest.raises(PruneSearchError, match="is not a constraint: write NAME<=LIMIT"):
        limits_for("smallest", run_constraints=target)
    with pytest.raises(PruneSearchError, match="speedup is maximized: its limit is written speedup>=LIMIT"):
        limits_for("speedup<=2", run_constraints=target)
    with pytest.raises(PruneSearchError, match="unknown objective 'watts'"):
        limits_for("watts<=3", run_constraints=target)
    with pytest.raises(PruneSearchError, match="no evaluated configs"):
        pick_candidates(trials.iloc[:0], target)


def _measured(ratios: dict[str, float], se: float = 0.0005) -> SideBySide:
    """What side-by-side timing would answer, WRITTEN BY HAND: each candidate's ratio to a 10 ms dense model."""
    return SideBySide(
        jobs={n: PairedMeasurement(ratio=r, se=se, rounds=12, reference_ms=10.0) for n, r in ratios.items()},
        reference_ms=10.0,
        reference_p10_ms=9.9,
        reference_p90_ms=10.1,
        seconds=1.0,
    )


def test_the_pick_is_the_best_candidate_whose_measured_speedup_meets_the_target(monkeypatch, tmp_path):
    """Every candidate measures 5% slower than predicted: the best (predicted 2.04x) misses 2x, the second
    (predicted 2.15x) meets it and is exported; a window where none meets it moves to the next one."""
    import prunesearch.export.pick as pick

    predicted = [2.04, 2.15, 2.3, 2.5]
    trials = pd.DataFrame(
        {
            "tokens": [2048] * 4,
            "latency_ms": [10.0 / s for s in predicted],
            "speedup": predicted,
            "loss": [0.1, 0.2, 0.3, 0.4],
            "config": [{"layers": [{"heads": 1, "ffn": 16 * (i + 1)}]} for i in range(4)],
        }
    )
    measured = {f"candidate-{i}": 1.05 / s for i, s in enumerate(predicted)}
    windows = []

    def fake_time_configs(loaded, configs, **options):
        windows.append(list(configs))
        return _measured({name: measured[name] for name in configs})

    monkeypatch.setattr(pick, "time_configs", fake_time_configs)
    target = [Constraint(objective="speedup", limit=2.0)]
    options = dict(limits=target, conditions=SimpleNamespace(backend="ort-cpu"), source=None, workdir=tmp_path)
    candidates = pick_candidates(trials, target)
    chosen = measured_pick(None, candidates, per_window=3, **options)
    assert chosen.config.layers[0].ffn == 32 and chosen.measured.speedup == pytest.approx(2.15 / 1.05)
    assert [c.meets for c in chosen.candidates] == [False, True, True] and [c.chosen for c in chosen.candidates] == [
        False,
        True,
        False,
    ]
    assert chosen.candidates[0].predicted["speedup"] == pytest.approx(2.04)
    windows.clear()
    chosen = measured_pick(None, candidates, per_window=1, windows=2, **options)  # one at a time: the second window
    assert windows == [["candidate-0"], ["candidate-1"]] and chosen.config.layers[0].ffn == 32
    with pytest.raises(
        PruneSearchError, match="none of the 1 best candidates measured within speedup >= 2.000x.*1.943x"
    ):
        measured_pick(None, candidates, per_window=1, windows=1, **options)
    assert (
        measured_pick(None, candidates, per_window=1, windows=1, tolerance=0.04, **options).config.layers[0].ffn == 16
    )


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


def test_a_pick_must_meet_its_target_with_confidence(monkeypatch, tmp_path):
    """Measured 2.01x, but with an interval reaching 1.97x: not certain enough; the next one (2.1x +- 0.5%) is."""
    import prunesearch.export.pick as pick

    trials = pd.DataFrame(
        {
            "tokens": [2048] * 2,
            "latency_ms": [4.9, 4.8],
            "speedup": [2.04, 2.08],
            "loss": [0.1, 0.2],
            "config": [{"layers": [{"heads": 1, "ffn": 16 * (i + 1)}]} for i in range(2)],
        }
    )
    errors = {"candidate-0": (1 / 2.01, 0.01), "candidate-1": (1 / 2.1, 0.0005)}

    def fake_time_configs(loaded, configs, **options):
        return SideBySide(
            jobs={
                n: PairedMeasurement(ratio=errors[n][0], se=errors[n][1], rounds=12, reference_ms=10.0) for n in configs
            },
            reference_ms=10.0,
            reference_p10_ms=9.9,
            reference_p90_ms=10.1,
            seconds=1.0,
        )

    monkeypatch.setattr(pick, "time_configs", fake_time_configs)
    target = [Constraint(objective="speedup", limit=2.0)]
    chosen = measured_pick(
        None,
        pick_candidates(trials, target),
        limits=target,
        workdir=tmp_path,
        source=None,
        conditions=SimpleNamespace(backend="ort-cpu"),
    )
    assert chosen.config.layers[0].ffn == 32 and [c.meets for c in chosen.candidates] == [False, True]
