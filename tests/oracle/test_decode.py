"""KV-cache decode step: ONNX export against torch, decode-phase tables, decoder speed."""

import json
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from prunesearch import LoadedModel, Workload
from prunesearch.cli import main
from prunesearch.errors import PruneSearchError, TableError
from prunesearch.graph import check_onnx, export_onnx
from prunesearch.oracle import (
    Conditions,
    LatencyTable,
    Predictor,
    decoder_speed,
    device_slug,
    ensure_table,
    profile_table,
)
from prunesearch.prune import prune
from prunesearch.space import adapter_for
from tests.conftest import FAST
from tests.space.tiny import FAMILIES, FFN_STEP, configs

CACHE_LEN = 8
DECODE = Workload(phase="decode", cache_len=CACHE_LEN)


def tiny(family: str, weights_hash: str) -> LoadedModel:
    model = FAMILIES[family].model()
    model.config.architectures = [type(model).__name__]  # as a saved checkpoint names it (LoadedModel.is_decoder)
    return LoadedModel(name=f"tiny-{family}", model=model, tokenizer=None, source=None, weights_hash=weights_hash)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("config", ["dense", "mixed", "no_heads"])  # mixed: layers 0 and 2 lose attention
def test_decode_step_matches_torch_after_a_real_prefill(family, config, tmp_path):
    model = FAMILIES[family].model()
    pruned = prune(model, configs(model)[config], ffn_step=FFN_STEP).eval()
    path = export_onnx(pruned, tmp_path / "step.onnx", batch=1, seq_len=1, cache_len=3)
    ids = torch.randint(3, model.config.vocab_size, (2, CACHE_LEN + 1), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = pruned(input_ids=ids, use_cache=False).logits[:, -1:].numpy()
        cache = pruned(input_ids=ids[:, :-1], use_cache=True).cache
    past = [l for l in cache.layers if l.keys is not None]
    feeds = {
        "input_ids": ids[:, -1:],
        "attention_mask": torch.ones_like(ids),
        "position_ids": torch.full((2, 1), CACHE_LEN),
    }
    for i, layer in enumerate(past):
        feeds |= {f"past.{i}.key": layer.keys, f"past.{i}.value": layer.values}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    assert {n for n in names if n.startswith("past.")} == {n for n in feeds if n.startswith("past.")}
    got = session.run(None, {k: v.numpy() for k, v in feeds.items() if k in names})[0]
    assert np.abs(got - full).max() < 1e-4
    assert check_onnx(pruned, path, batch=2, seq_len=1, cache_len=5) < 1e-4


def test_decode_needs_a_decoder_and_a_cache(tmp_path):
    bert = tiny("bert", "b")
    with pytest.raises(ValueError, match="needs a decoder"):
        export_onnx(bert.model, tmp_path / "x.onnx", seq_len=1, cache_len=4)
    with pytest.raises(PruneSearchError, match="needs a decoder"):
        Conditions.here(bert, Workload(phase="decode", cache_len=4), ffn_step=FFN_STEP)
    with pytest.raises(ValueError, match="decode phase only"):
        Workload(seq_len=16, phase="prefill", cache_len=4)


@pytest.fixture(scope="module")
def decode_table():
    loaded = tiny("llama", "abc")
    table = profile_table(loaded, Conditions.here(loaded, DECODE, ffn_step=FFN_STEP), calibration_models=3, timing=FAST)
    return loaded, table


def test_decode_table_records_its_phase_and_cache(decode_table, tmp_path):
    loaded, table = decode_table
    c = table.conditions
    assert (c.phase, c.cache_len, c.seq_len, c.model_hash) == ("decode", CACHE_LEN, 1, "abc")
    space = adapter_for(loaded.model).space(ffn_step=FFN_STEP)
    assert set(zip(table.rows.kind, table.rows["size"])) == (
        {("base", 0)} | {("attn", h) for h in space.layers[0].heads[1:]} | {("ffn", w) for w in space.layers[0].ffn[1:]}
    )
    assert table.meta.calibration.n_models == 3 and Predictor(table, space).dense_ms > 0
    path = table.save(tmp_path / "d.csv")
    same = Conditions.here(loaded, DECODE, ffn_step=FFN_STEP)
    assert LatencyTable.load(path, expect=same).conditions == c
    with pytest.raises(TableError, match="cache_len: table 8, wanted 16"):
        LatencyTable.load(path, expect=same.model_copy(update={"cache_len": 16}))
    with pytest.raises(TableError, match="phase: table 'decode', wanted 'prefill'"):
        LatencyTable.load(path, expect=Conditions.here(loaded, Workload(seq_len=1), ffn_step=FFN_STEP))


def test_ensure_finds_and_checks_a_cached_decode_table(decode_table, tmp_path, monkeypatch, fast_timing):
    import prunesearch.oracle._ensure as ensure

    loaded, table = decode_table
    monkeypatch.setenv("PRUNESEARCH_CACHE", str(tmp_path))
    monkeypatch.setattr(ensure, "DRIFT_TOLERANCE", 10.0)  # tiny decode steps: their timing drives no claim here
    c = table.conditions
    saved = table.save(tmp_path / "latency_tables" / device_slug(c.device) / c.file_name())
    choice = ensure_table(loaded, DECODE, ffn_step=FFN_STEP)
    assert (choice.path, choice.how) == (saved, "cached") and choice.check is not None and choice.reference_ms > 0


def test_decoder_speed_and_predict(decode_table, tmp_path, capsys, monkeypatch):
    loaded, decode = decode_table
    space = adapter_for(loaded.model).space(ffn_step=FFN_STEP)
    prefill = LatencyTable(
        decode.rows,
        decode.meta.model_copy(
            update={  # the same shares of a 7x slower dense pass
                "dense_ms": decode.meta.dense_ms * 7,
                "conditions": decode.conditions.model_copy(update={"phase": "prefill", "cache_len": 0, "seq_len": 16}),
            }
        ),
    )
    config = configs(loaded.model)["mixed"]
    speed = decoder_speed(Predictor(prefill, space), Predictor(decode, space), config)
    decode_ms = Predictor(decode, space).config_latency_ms(config)
    assert speed.decode_ms == decode_ms and speed.tokens_per_s == pytest.approx(1000 / decode_ms)
    assert speed.ttft_ms == Predictor(prefill, space).config_latency_ms(config)
    with pytest.raises(TableError, match="prefill table and a decode table"):
        decoder_speed(Predictor(decode, space), Predictor(prefill, space), config)

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(config.to_dict()))
    args = [
        "predict",
        "--table",
        decode.save(tmp_path / "d.csv"),
        "--config",
        cfg,
        "--prefill-table",
        prefill.save(tmp_path / "p.csv"),
        "--json",
    ]
    monkeypatch.setattr(sys, "argv", ["prunesearch", *map(str, args)])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["phase"] == "decode" and facts["cache_len"] == CACHE_LEN
    assert facts["tokens_per_s"] == pytest.approx(speed.tokens_per_s) and facts["ttft_ms"] == pytest.approx(
        speed.ttft_ms
    )


def test_export_and_timing_for_a_decode_table_are_its_decode_step(decode_table, tmp_path):
    from prunesearch.export import write_export
    from prunesearch.oracle import time_configs
    from prunesearch.prune import MagnitudeSource

    loaded, table = decode_table
    out = tmp_path / "out"
    config = configs(loaded.model)["mixed"]
    source = MagnitudeSource(adapter_for(loaded.model), ffn_step=FFN_STEP)
    manifest = write_export(
        loaded, config, out, source=source, formats=["onnx"], conditions=table.conditions, table=table.path
    )
    inputs = [
        i.name for i in ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"]).get_inputs()
    ]
    assert inputs[3:] == ["past.0.key", "past.0.value"]
    assert manifest.onnx_max_abs_diff < 1e-4 and manifest.conditions.phase == "decode"
    measured = time_configs(loaded, {"mixed": config}, conditions=table.conditions, options=FAST)
    assert measured["mixed"].ratio > 0 and measured.reference_ms > 0
