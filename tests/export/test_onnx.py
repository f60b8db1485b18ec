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


def test_an_unfolded_graph_runs_as_the_folded_one_and_holds_a_tied_head_once(tmp_path):
    import numpy as np
    import onnx
    import onnxruntime as ort

    from prunesearch.graph._onnx import example_inputs
    from tests.space.tiny import VOCAB

    model = FAMILIES["llama"].model()  # its output head is tied to its token embeddings
    hidden = model.config.hidden_size
    paths = {
        fold: export_onnx(model, tmp_path / f"{fold}.onnx", seq_len=8, fold_constants=fold) for fold in (True, False)
    }
    vocab_sized = {
        fold: [w.name for w in onnx.load(str(p)).graph.initializer if sorted(w.dims) == sorted([VOCAB, hidden])]
        for fold, p in paths.items()
    }
    assert len(vocab_sized[False]) == 1 and len(vocab_sized[True]) == 2, vocab_sized
    assert check_onnx(model, paths[False], batch=2, seq_len=12) < 1e-4
    feeds = {k: v.numpy() for k, v in example_inputs(model, batch=2, seq_len=12, seed=3).items()}
    outputs = [ort.InferenceSession(str(p)).run(None, feeds)[0] for p in paths.values()]
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.filterwarnings("ignore:Casting complex values to real:UserWarning")  # the exporter, on bf16 rotary
def test_streamed_initializers_are_the_models_weights(precision, tmp_path):
    import onnx
    import torch

    model = FAMILIES["llama"].model()
    path = export_onnx(model, tmp_path / "m.onnx", seq_len=8, precision=precision)
    onnx.checker.check_model(str(path))
    graph = onnx.load(str(path)).graph
    weights = {
        f"model.{k}": v.to({"fp32": torch.float32, "bf16": torch.bfloat16}[precision])
        for k, v in model.state_dict().items()
    }
    assert graph.initializer and not {i.name for i in graph.input} & {w.name for w in graph.initializer}
    transposed = [w.name for w in graph.initializer if w.name.endswith(".T")]
    assert transposed  # the Linears' weights, read only through a Transpose, are stored transposed
    for w in graph.initializer:
        tensor = weights[w.name.removesuffix(".T")]
        tensor = tensor.T if w.name.endswith(".T") else tensor
        assert list(w.dims) == list(tensor.shape), w.name
        assert w.raw_data == tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes(), w.name


def test_the_exporter_gets_the_weights_as_inputs_and_unread_ones_are_left_out(monkeypatch, tmp_path):
    """The exporter's shape inference forms constants from weights it knows (each Linear's transposed weight:
    SmolLM2's dense graph set a search's peak): it is given none, and a weight no node reads (BERT's pooler) is not
    written."""
    import onnx
    import torch

    exported = []
    export = torch.onnx.export

    def spy(module, args, *rest, **kwargs):
        exported.append((list(module.parameters()), list(module.buffers()), len(args)))
        return export(module, args, *rest, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", spy)
    model = FAMILIES["bert"].model()  # BertModel: its pooler is not on the way to last_hidden_state
    path = export_onnx(model, tmp_path / "m.onnx", seq_len=8)
    parameters, buffers, n_args = exported[0]
    assert parameters == [] and buffers == [] and n_args > 2
    names = {w.name for w in onnx.load(str(path)).graph.initializer}
    assert names and not any("pooler" in name for name in names)
    assert check_onnx(model, path, batch=2, seq_len=12) < 1e-4


def test_a_weight_read_only_inside_a_subgraph_is_written(tmp_path):
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper

    from prunesearch.graph._onnx import write_with_weights

    def branch(name, op):
        out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [2])
        return helper.make_graph([helper.make_node(op, ["x", "w"], [f"{name}_out"])], name, [], [out])

    graph = helper.make_graph(
        [helper.make_node("If", ["flag"], ["y"], then_branch=branch("then", "Add"), else_branch=branch("else", "Mul"))],
        "g",
        [
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [2]),
            helper.make_tensor_value_info("unread", TensorProto.FLOAT, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    weights = {"w": torch.tensor([1.0, 2.0]), "unread": torch.zeros(2)}
    write_with_weights(model.SerializeToString(), weights, tmp_path / "m.onnx")
    assert [w.name for w in onnx.load(str(tmp_path / "m.onnx")).graph.initializer] == ["w"]
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    got = session.run(None, {"flag": np.array(True), "x": np.array([1.0, 1.0], dtype=np.float32)})[0]
    np.testing.assert_allclose(got, [2.0, 3.0])


def test_weights_read_only_through_a_transpose_are_stored_transposed(tmp_path):
    """ONNX Runtime folds a weight's Transpose into a copy and keeps the original's pages: the graph stores each
    such weight transposed, with no Transpose of a weight left, except the tied head's (its embeddings are read by
    a Gather too), and computes the same."""
    import onnx
    import torch

    model = FAMILIES["llama"].model()
    path = export_onnx(model, tmp_path / "m.onnx", seq_len=8)
    graph = onnx.load(str(path)).graph
    weights = {w.name for w in graph.initializer}
    transposed_weights = [n.input[0] for n in graph.node if n.op_type == "Transpose" and n.input[0] in weights]
    assert transposed_weights == ["model.model.embed_tokens.weight"]
    embeddings = model.get_input_embeddings().weight
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.weight is not embeddings]
    assert sum(name.endswith(".T") for name in weights) == len(linears)
    assert check_onnx(model, path, batch=2, seq_len=12) < 1e-4
