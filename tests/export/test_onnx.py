import pytest

from prunesearch.graph import check_onnx, export_onnx
from prunesearch.prune import prune
from tests.space.tiny import FAMILIES, FFN_STEP, configs


@pytest.mark.parametrize("family", ["bert", "llama", "gpt2"])
def test_pruned_onnx_matches_torch_at_other_shapes(family, tmp_path):
    model = FAMILIES[family].model()
    for name, config in configs(model).items():
        pruned = prune(model, config, ffn_step=FFN_STEP)
        path = export_onnx(pruned, tmp_path / f"{name}.onnx", batch=1, seq_len=8)
        assert check_onnx(pruned, path, batch=2, seq_len=12) < 1e-4, name
