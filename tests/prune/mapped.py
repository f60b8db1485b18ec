"""A Llama loaded from safetensors, as packaged weights are: its tensors are views of the file's mapping."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from prunesearch._heap import file_mappings
from tests.space.tiny import LLAMA_SHAPE


def mapped_llama(folder: Path) -> tuple[nn.Module, Path]:
    """A Llama of ~10 MB saved to ``folder`` and loaded back, with every page read (resident); and its file."""
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = LLAMA_SHAPE | dict(hidden_size=256, num_attention_heads=8, head_dim=32, intermediate_size=1024)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**shape)).save_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder).eval()
    for p in model.parameters():
        p.sum()
    return model, (folder / "model.safetensors").resolve()


def resident_kb(path: Path) -> int:
    """Resident kB of this process's mappings of ``path``."""
    return sum(m.kb["Rss"] for m in file_mappings() if m.path == str(path))
