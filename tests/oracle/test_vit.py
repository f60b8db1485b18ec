"""A ViT takes pixels: profiled, exported to ONNX and timed like a text model."""

import math

import onnxruntime as ort
import pytest

from prunesearch import LoadedModel, Workload
from prunesearch.errors import PruneSearchError
from prunesearch.export import write_export
from prunesearch.oracle import Conditions, Predictor, profile_table, time_configs
from prunesearch.prune import MagnitudeSource
from prunesearch.space import adapter_for
from tests.conftest import FAST
from tests.space.tiny import FAMILIES, FFN_STEP, configs


@pytest.fixture(scope="module")
def vit():
    return LoadedModel(name="tiny-vit", model=FAMILIES["vit"].model(), tokenizer=None, source=None, weights_hash="v")


def test_a_vit_workload_takes_pixels_and_refuses_tokens(vit):
    c = Conditions.here(vit, Workload(), ffn_step=FFN_STEP)
    assert (c.inputs, c.seq_len, c.phase) == ("pixels", None, "encode")
    with pytest.raises(PruneSearchError, match="takes pixels of its own image size: give no seq_len"):
        Conditions.here(vit, Workload(seq_len=128), ffn_step=FFN_STEP)
    with pytest.raises(PruneSearchError, match="the model takes pixels, not tokens"):
        Conditions.here(vit, Workload(inputs="tokens"), ffn_step=FFN_STEP)


def test_a_vit_is_profiled_exported_and_timed(vit, tmp_path):
    c = Conditions.here(vit, Workload(), ffn_step=FFN_STEP)
    table = profile_table(vit, c, calibration_models=3, timing=FAST)
    space = adapter_for(vit.model).space(ffn_step=FFN_STEP)
    config = configs(vit.model)["mixed"]
    # a tiny ViT runs in microseconds: its rows are mostly noise, so only that the table predicts is checked
    assert math.isfinite(Predictor(table, space).config_ratio(config))
    source = MagnitudeSource(adapter_for(vit.model), ffn_step=FFN_STEP)
    manifest = write_export(vit, config, tmp_path / "out", formats=["onnx"], source=source, conditions=table.conditions)
    session = ort.InferenceSession(str(tmp_path / "out" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixel_values"] and manifest.onnx_max_abs_diff < 1e-4
    measured = time_configs(vit, {"mixed": config}, conditions=table.conditions, options=FAST)
    assert measured["mixed"].ratio > 0
