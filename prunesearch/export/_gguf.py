"""GGUF for llama.cpp and what runs on it (ollama, llama-cpp-python): a pruned Llama-family decoder.

llama.cpp reads per-layer sizes from arrays (``get_key_or_arr``): ``{arch}.attention.head_count``,
``.head_count_kv`` and ``.feed_forward_length``, one entry per layer. Its ``deci`` architecture, written for
Llama-3.1-Nemotron-51B (a Llama pruned and searched block by block), is the Llama graph with those per-layer
counts and with removed blocks: a layer with 0 heads has no attention. A layer with FFN width 0 is skipped
whole, attention output included (it was written for layers with neither), and the head size is read off the
first layer's head count; so two shapes a search makes get a stand-in, both exact:

- a layer with attention but no FFN gets an FFN of width 1 whose weights are all zero;
- when the first layer has no attention, llama.cpp would take the head size from its head count (0), so it
  gets deci's "linear attention" (a plain projection; head count > 0, KV heads 0) with a zero weight.

Weights are fp32 (``general.file_type`` ALL_F32: llama.cpp's ``llama-quantize`` makes smaller files from it).
Query and key rows are permuted as llama.cpp's converter does: transformers rotates the two halves of a
head, llama.cpp adjacent pairs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from prunesearch.errors import PruneSearchError
from prunesearch.space._modules import BiasOnly

GGUF_FILE = "model.gguf"
ARCH = "deci"
#: llama.cpp's name for "no text tokenizer" (a model run on token ids)
NO_VOCAB = "none"


def check_gguf(model: nn.Module) -> None:
    """Refuse, with the reason, a model whose pruned shapes llama.cpp's ``deci`` graph cannot run."""
    config = model.config
    model_type = config.model_type
    if model_type != "llama":
        why = {
            "qwen2": "its q/k/v biases",
            "qwen3": "its per-head q/k norms",
            "mistral": "its sliding-window attention",
            "gpt2": "its per-layer head counts (llama.cpp's gpt2 graph has one count for all layers)",
        }.get(model_type, "llama.cpp's per-layer architecture (deci) is a Llama")
        kind = "decoder" if _is_decoder(model) else "encoder (GGUF is for the decoders llama.cpp runs)"
        raise PruneSearchError(
            f"--to gguf: {model_type} {kind} cannot be written: {why} is not in llama.cpp's deci architecture; "
            "export it with --to hf or onnx"
        )
    extras = [k for k in ("attention_bias", "mlp_bias") if getattr(config, k, False)]
    rope = getattr(config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        extras.append(f"rope_type {rope['rope_type']!r}")
    if extras:
        raise PruneSearchError(
            f"--to gguf: this Llama has {', '.join(extras)}, which the export does not write yet; "
            "export it with --to hf or onnx"
        )


def _is_decoder(model: nn.Module) -> bool:
    from prunesearch._hf import is_causal_lm

    return is_causal_lm(model.config)


def permute(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Rows of a q or k projection reordered from halves-rotated heads (transformers) to pairs (llama.cpp)."""
    rows, cols = weight.shape
    return weight.reshape(n_heads, 2, rows // n_heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def layer_tensors(model: nn.Module) -> tuple[dict[str, np.ndarray], dict[str, list[int]], list[str]]:
    """(GGUF tensors by name, per-layer ``head_count`` / ``head_count_kv`` / ``feed_forward_length``, notes on
    the stand-ins used) of a pruned Llama."""
    config = model.config
    hidden = config.hidden_size
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    per_group = config.num_attention_heads // config.num_key_value_heads
    tensors: dict[str, np.ndarray] = {}
    counts: dict[str, list[int]] = {"head_count": [], "head_count_kv": [], "feed_forward_length": []}
    notes: list[str] = []

    def put(name: str, t: torch.Tensor) -> None:
        tensors[name] = t.detach().to(torch.float32).cpu().numpy()

    for i, layer in enumerate(model.model.layers):
        blk = f"blk.{i}"
        attn, mlp = layer.self_attn, layer.mlp
        heads = 0 if isinstance(attn, BiasOnly) else attn.q_proj.weight.shape[0] // head_dim
        width = 0 if isinstance(mlp, BiasOnly) else mlp.gate_proj.weight.shape[0]
        kv = heads // per_group
        if heads:
            put(f"{blk}.attn_norm.weight", layer.input_layernorm.weight)
            put(f"{blk}.attn_q.weight", permute(attn.q_proj.weight, heads))
            put(f"{blk}.attn_k.weight", permute(attn.k_proj.weight, kv))
            put(f"{blk}.attn_v.weight", attn.v_proj.weight)
            put(f"{blk}.attn_output.weight", attn.o_proj.weight)
        elif i == 0:
            heads, kv = config.num_attention_heads, 0
            put(f"{blk}.attn_norm.weight", layer.input_layernorm.weight)
            put(f"{blk}.attn_output.weight", torch.zeros(hidden, hidden))
            notes.append(
                f"layer {i}: attention removed; written as a zero linear attention (llama.cpp reads the "
                "head size off the first layer's head count)"
            )
        if width:
            put(f"{blk}.ffn_norm.weight", layer.post_attention_layernorm.weight)
            put(f"{blk}.ffn_gate.weight", mlp.gate_proj.weight)
            put(f"{blk}.ffn_up.weight", mlp.up_proj.weight)
            put(f"{blk}.ffn_down.weight", mlp.down_proj.weight)
        elif heads:
            width = 1
            put(f"{blk}.ffn_norm.weight", torch.ones(hidden))
            put(f"{blk}.ffn_gate.weight", torch.zeros(1, hidden))
            put(f"{blk}.ffn_up.weight", torch.zeros(1, hidden))
            put(f"{blk}.ffn_down.weight", torch.zeros(hidden, 1))
            notes.append(
                f"layer {i}: FFN removed; written as a zero FFN of width 1 (llama.cpp's deci graph "
                "drops a layer's attention output when its FFN width is 0)"
            )
        else:  # only a layer adding a constant is kept empty, and a bias-free Llama adds none
            raise PruneSearchError(f"layer {i} has neither attention nor FFN: llama.cpp has no such layer")
        counts["head_count"].append(heads)
        counts["head_count_kv"].append(kv)
        counts["feed_forward_length"].append(width)
    put("token_embd.weight", model.model.embed_tokens.weight)
    put("output_norm.weight", model.model.norm.weight)
    if not config.tie_word_embeddings:  # tied: llama.cpp reuses token_embd
        put("output.weight", model.lm_head.weight)
    return tensors, counts, notes


def write_gguf(
    model: nn.Module,
    path: Path,
    *,
    name: str,
    tokenizer=None,
    tokenizer_gguf: Path | None = None,
) -> list[str]:
    """Write ``model`` (a pruned Llama) to ``path``; returns notes on what stands in for what.

    The tokenizer comes from ``tokenizer_gguf`` (a GGUF the model was converted from: llama.cpp's own
    tokenizer for it, copied), else from ``tokenizer`` (a Hugging Face byte-level BPE tokenizer), else none
    (the model runs on token ids)."""
    import gguf

    check_gguf(model)
    config = model.config
    tensors, counts, notes = layer_tensors(model)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rope = getattr(config, "rope_parameters", None) or {}
    writer = gguf.GGUFWriter(path, ARCH)
    writer.add_name(name)
    writer.add_block_count(len(model.model.layers))
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(counts["feed_forward_length"])
    writer.add_head_count(counts["head_count"])
    writer.add_head_count_kv(counts["head_count_kv"])
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    notes.append(_add_tokenizer(writer, config, tokenizer=tokenizer, tokenizer_gguf=tokenizer_gguf))
    for tensor_name, array in tensors.items():
        writer.add_tensor(tensor_name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return notes


def _add_tokenizer(writer, config, *, tokenizer, tokenizer_gguf: Path | None) -> str:
    """Write the tokenizer's fields; returns a note saying where they came from."""
    import gguf

    if tokenizer_gguf is not None:
        reader = gguf.GGUFReader(tokenizer_gguf)
        for key, field in reader.fields.items():
            if key.startswith("tokenizer."):
                main = field.types[0]
                sub = field.types[-1] if main == gguf.GGUFValueType.ARRAY else None
                writer.add_key_value(key, field.contents(), main, sub_type=sub)
        return f"tokenizer: copied from {Path(tokenizer_gguf).name}, the GGUF the model was converted from"
    if tokenizer is None:
        writer.add_tokenizer_model(NO_VOCAB)
        return "tokenizer: none (the model had none; llama.cpp runs it on token ids)"
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        try:
            vocab = gguf.BpeVocab(Path(tmp))
        except FileNotFoundError:
            raise PruneSearchError(
                "--to gguf: the tokenizer is not a byte-level BPE (GPT-2 style) tokenizer, the only kind the "
                "export converts; export with --to hf"
            ) from None
        tokens, _, types = zip(*vocab.all_tokens())
        special = set(tokenizer.all_special_ids)
        types = [gguf.TokenType.CONTROL if i in special else t for i, t in enumerate(types)]
        writer.add_tokenizer_model(vocab.tokenizer_model)
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        gguf.SpecialVocab(Path(tmp), load_merges=True, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)
    return (
        "tokenizer: built from the Hugging Face tokenizer with llama.cpp's default pre-tokenizer, which may split "
        "text differently from the original: compare llama.cpp's tokens with the Hugging Face tokenizer's"
    )


def source_gguf(loaded) -> Path | None:
    """The GGUF a model alias was converted from (smollm2), whose tokenizer fields are llama.cpp's own."""
    from prunesearch._models import gguf_origin

    return gguf_origin(getattr(loaded, "name", ""))
