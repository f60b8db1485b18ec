"""Tiny random models of each family, built from a config (no download), and their inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import (
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    ViTConfig,
    ViTModel,
)

from prunesearch import Config, LayerConfig
from prunesearch.space import adapter_for

FFN_STEP = 16  # tiny FFNs are 64 wide: grid 0, 16, 32, 48, 64
VOCAB = 97
#: the decoder shapes, shared with the variants in test_adapters.py (which override a few keys)
GPT2_SHAPE = dict(
    vocab_size=VOCAB, n_embd=32, n_layer=3, n_head=4, n_inner=64, n_positions=64, bos_token_id=1, eos_token_id=2
)
LLAMA_SHAPE = dict(  # GQA: 6 query heads in 2 KV groups of 3
    vocab_size=VOCAB,
    hidden_size=48,
    num_hidden_layers=3,
    num_attention_heads=6,
    num_key_value_heads=2,
    head_dim=8,
    intermediate_size=64,
    bos_token_id=1,
    eos_token_id=2,
)
VIT_SHAPE = dict(  # shared with test_io.py's image classifier
    image_size=16,
    patch_size=4,
    num_channels=3,
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=64,
)


@dataclass(frozen=True)
class Family:
    name: str
    build: Callable[[], nn.Module]
    inputs: Callable[[torch.Generator], dict]
    output: str  # the output field compared

    def model(self) -> nn.Module:
        torch.manual_seed(0)
        model = self.build()
        # random init leaves biases at zero and norms at one: perturb every parameter
        # so that biases, folded constants and norms are all exercised
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
        return model.eval()


def _text_inputs(gen: torch.Generator, *, padded: bool) -> dict:
    ids = torch.randint(3, VOCAB, (2, 9), generator=gen)
    mask = torch.ones_like(ids)
    if padded:
        mask[1, -3:] = 0
    return {"input_ids": ids, "attention_mask": mask}


FAMILIES = {
    "bert": Family(
        "bert",
        lambda: BertModel(
            BertConfig(
                vocab_size=VOCAB,
                hidden_size=32,
                num_hidden_layers=3,
                num_attention_heads=4,
                intermediate_size=64,
                max_position_embeddings=32,
            )
        ),
        lambda g: _text_inputs(g, padded=True),
        "last_hidden_state",
    ),
    "gpt2": Family(
        "gpt2",
        lambda: GPT2LMHeadModel(GPT2Config(**GPT2_SHAPE, pad_token_id=0)),
        lambda g: _text_inputs(g, padded=False),
        "logits",
    ),
    "llama": Family(
        "llama",
        lambda: LlamaForCausalLM(
            LlamaConfig(**LLAMA_SHAPE, max_position_embeddings=64, tie_word_embeddings=True, pad_token_id=0)
        ),
        lambda g: _text_inputs(g, padded=False),
        "logits",
    ),
    "vit": Family(
        "vit",
        lambda: ViTModel(ViTConfig(**VIT_SHAPE)),
        lambda g: {"pixel_values": torch.randn(2, 3, 16, 16, generator=g)},
        "last_hidden_state",
    ),
}
DECODERS = ("gpt2", "llama")


def configs(model: nn.Module) -> dict[str, Config]:
    """Dense, every block of one kind removed, everything removed, and mixed layers."""
    space = adapter_for(model).space(ffn_step=FFN_STEP)
    h, f = space.layers[0].heads, space.layers[0].ffn

    def layers(*pairs: tuple[int, int]) -> Config:
        return Config(layers=tuple(LayerConfig(heads=a, ffn=b) for a, b in pairs))

    return {
        "dense": space.dense(),
        "no_heads": space.uniform_config(heads=0, ffn=f[-1]),
        "no_ffn": space.uniform_config(heads=h[-1], ffn=0),
        "empty": space.uniform_config(heads=0, ffn=0),
        "mixed": layers((0, 0), (h[1], f[1]), (0, f[-2])),
        "mixed_tail": layers((h[-2], 0), (h[-1], f[2]), (0, 0)),
    }


CASES = [
    (family, config)
    for family in FAMILIES
    for config in ("dense", "no_heads", "no_ffn", "empty", "mixed", "mixed_tail")
]
