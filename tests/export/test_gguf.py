"""--to gguf: per-layer counts and tensors of a pruned Llama read back as written; llama.cpp runs it as torch does."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from prunesearch import Config
from prunesearch.errors import PruneSearchError
from prunesearch.export import MANIFEST, write_export
from prunesearch.export._gguf import GGUF_FILE, permute
from prunesearch.prune import MagnitudeSource, prune
from prunesearch.space import adapter_for
from prunesearch.space._modules import BiasOnly
from tests.space.tiny import FAMILIES, FFN_STEP

#: heads/ffn per layer: GQA groups of 3, a layer without attention first, one without FFN, and a dropped layer
STAND_INS = [(0, 32), (6, 0), (0, 0), (3, 64)]


def tiny_llama(n_layers: int = 4):
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.space.tiny import LLAMA_SHAPE, Family

    shape = LLAMA_SHAPE | {"num_hidden_layers": n_layers}
    build = lambda: LlamaForCausalLM(LlamaConfig(**shape, max_position_embeddings=64, tie_word_embeddings=False))  # noqa: E731
    return Family("llama", build, FAMILIES["llama"].inputs, "logits").model()


def export(model, layers, out, *, name="tiny-llama"):
    config = Config.from_dict({"layers": [{"heads": h, "ffn": f} for h, f in layers]})
    source = MagnitudeSource(adapter_for(model), ffn_step=FFN_STEP)
    loaded = SimpleNamespace(name=name, model=model, tokenizer=None, source=None)
    manifest = write_export(loaded, config, out, source=source, formats=["gguf"])
    return prune(model, config, source), manifest


def read(path):
    import gguf

    reader = gguf.GGUFReader(path)
    fields = {k: f.contents() for k, f in reader.fields.items()}
    # numpy order (rows, columns) is torch's; GGUF's own shape lists the columns first
    tensors = {t.name: np.asarray(t.data).reshape(tuple(int(d) for d in reversed(t.shape))) for t in reader.tensors}
    return fields, tensors


def assert_reads_back_as(pruned, fields, tensors):
    """Every layer's counts, and every tensor's shape and values, are the pruned model's (q/k rows permuted)."""
    config = pruned.config
    head_dim = config.head_dim
    per_group = config.num_attention_heads // config.num_key_value_heads
    expect = {"token_embd.weight": pruned.model.embed_tokens.weight, "output_norm.weight": pruned.model.norm.weight}
    if not config.tie_word_embeddings:
        expect["output.weight"] = pruned.lm_head.weight
    for i, layer in enumerate(pruned.model.layers):
        attn, mlp = layer.self_attn, layer.mlp
        if not isinstance(attn, BiasOnly):
            heads = attn.q_proj.weight.shape[0] // head_dim
            assert (fields["deci.attention.head_count"][i], fields["deci.attention.head_count_kv"][i]) == (
                heads,
                heads // per_group,
            )
            expect |= {
                f"blk.{i}.attn_norm.weight": layer.input_layernorm.weight,
                f"blk.{i}.attn_q.weight": permute(attn.q_proj.weight, heads),
                f"blk.{i}.attn_k.weight": permute(attn.k_proj.weight, heads // per_group),
                f"blk.{i}.attn_v.weight": attn.v_proj.weight,
                f"blk.{i}.attn_output.weight": attn.o_proj.weight,
            }
        if not isinstance(mlp, BiasOnly):
            assert fields["deci.feed_forward_length"][i] == mlp.gate_proj.weight.shape[0]
            expect |= {
                f"blk.{i}.ffn_norm.weight": layer.post_attention_layernorm.weight,
                f"blk.{i}.ffn_gate.weight": mlp.gate_proj.weight,
                f"blk.{i}.ffn_up.weight": mlp.up_proj.weight,
                f"blk.{i}.ffn_down.weight": mlp.down_proj.weight,
            }
    assert fields["deci.block_count"] == len(pruned.model.layers)
    for name, t in expect.items():
        assert tensors[name].shape == tuple(t.shape), name
        np.testing.assert_array_equal(tensors[name], t.detach().numpy(), err_msg=name)
    return set(tensors) - set(expect)  # the stand-ins


def test_counts_and_tensors_read_back_as_the_pruned_model(tmp_path):
    model = tiny_llama()
    pruned, manifest = export(model, STAND_INS, tmp_path)
    fields, tensors = read(tmp_path / GGUF_FILE)
    assert fields["general.architecture"] == "deci" and fields["deci.block_count"] == 3  # the empty layer dropped
    # layer 0: no attention, stood in by a zero linear attention (KV heads 0); layer 1: no FFN, a zero FFN of width 1
    assert fields["deci.attention.head_count"] == [6, 6, 3]
    assert fields["deci.attention.head_count_kv"] == [0, 2, 1]
    assert fields["deci.feed_forward_length"] == [32, 1, 64]
    assert fields["deci.attention.key_length"] == fields["deci.rope.dimension_count"] == 8
    layers = pruned.model.layers
    assert isinstance(layers[0].self_attn, BiasOnly) and isinstance(layers[1].mlp, BiasOnly)
    stand_ins = assert_reads_back_as(pruned, fields, tensors)
    assert stand_ins == {f"blk.0.{t}.weight" for t in ("attn_norm", "attn_output")} | {
        f"blk.1.ffn_{t}.weight" for t in ("norm", "gate", "up", "down")
    }
    assert not tensors["blk.0.attn_output.weight"].any() and tensors["blk.0.attn_output.weight"].shape == (48, 48)
    assert not tensors["blk.1.ffn_down.weight"].any() and tensors["blk.1.ffn_up.weight"].shape == (1, 48)
    record = json.loads((tmp_path / MANIFEST).read_text())["written"]
    assert [w["format"] for w in record] == ["gguf"] and record[0]["files"] == [GGUF_FILE]
    assert any("zero FFN of width 1" in n for n in record[0]["notes"])
    assert any("tokenizer: none" in n for n in record[0]["notes"])


def test_permute_pairs_the_halves_of_each_head():
    weight = torch.arange(8.0)[:, None].repeat(1, 2)  # 2 heads of 4 rows: halves (0 1 | 2 3), (4 5 | 6 7)
    assert permute(weight, 2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_gguf_is_refused_before_any_work_where_llama_cpp_cannot_run_it(family, tmp_path):
    model = FAMILIES[family].model()
    loaded = SimpleNamespace(name="tiny", model=model, tokenizer=None, source=None)
    config = adapter_for(model).space(ffn_step=FFN_STEP).dense()
    with pytest.raises(PruneSearchError, match=r"--to gguf: .* export it with --to hf or onnx"):
        write_export(loaded, config, tmp_path / "out", source=None, formats=["hf", "gguf"])
    assert not (tmp_path / "out").exists()


def test_llama_cpp_runs_the_file_as_torch_does(tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed ('.[gguf-check]')")
    model = tiny_llama()
    pruned, _ = export(model, STAND_INS, tmp_path)
    llm = llama_cpp.Llama(model_path=str(tmp_path / GGUF_FILE), n_ctx=64, logits_all=True, verbose=False)
    ids = torch.randint(3, 90, (16,), generator=torch.Generator().manual_seed(0))
    llm.eval(ids.tolist())
    with torch.no_grad():
        expect = pruned(ids[None]).logits[0].numpy()
    # llama.cpp keeps its KV cache in fp16: agreement to ~1e-4 of logits of size ~1
    np.testing.assert_allclose(np.asarray(llm.scores[: len(ids)]), expect, atol=2e-3, rtol=0)


#: SmolLM2-135M (30 layers, 9 query heads in 3 KV groups, FFN 1536): both stand-ins, a dropped layer, mixed sizes
#: (mild: magnitude pruning without reconstruction, so the perplexity stays a number worth comparing)
SMOLLM2 = [(0, 1536), (9, 1536), (9, 0), (0, 0)] + [(6, 1024) if i % 5 == 0 else (9, 1536) for i in range(26)]


@pytest.mark.slow
def test_smollm2_reads_back_and_llama_cpp_perplexity_matches_torch(tmp_path):
    from prunesearch import _io as io
    from prunesearch import load_model
    from prunesearch.prune._calibration import DATA

    config = Config.from_dict({"layers": [{"heads": h, "ffn": f} for h, f in SMOLLM2]})
    loaded = load_model("smollm2")
    source = MagnitudeSource(adapter_for(loaded.model))
    manifest = write_export(loaded, config, tmp_path, source=source, formats=["hf", "gguf"])
    assert [w.format for w in manifest.written] == ["hf", "gguf"]
    assert "sentence-transformers" in manifest.skipped
    pruned = io.load(tmp_path)
    fields, tensors = read(tmp_path / GGUF_FILE)
    assert len(assert_reads_back_as(pruned, fields, tensors)) == 2 + 4  # layer 0's attention, layer 2's FFN
    assert any("copied from SmolLM2" in n for n in manifest.written[1].notes)
    assert fields["tokenizer.ggml.pre"] == "smollm" and len(fields["tokenizer.ggml.tokens"]) == 49152

    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed ('.[gguf-check]')")
    from transformers import AutoTokenizer

    text = " ".join((DATA / "python_docs.txt").read_text().splitlines()[1:40])
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    ids = tokenizer(text).input_ids[:512]
    llm = llama_cpp.Llama(model_path=str(tmp_path / GGUF_FILE), n_ctx=512, logits_all=True, verbose=False)
    assert llm.tokenize(text.encode(), add_bos=False)[:512] == ids  # llama.cpp's tokenizer is the model's
    llm.eval(ids)
    with torch.no_grad():
        torch_logits = pruned(torch.tensor([ids])).logits[0]

    def perplexity(logits: torch.Tensor) -> float:
        return float(torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:])).exp())

    ours = perplexity(torch.from_numpy(np.asarray(llm.scores[: len(ids)], dtype=np.float32)))
    assert ours == pytest.approx(perplexity(torch_logits), rel=0.01)
