"""Save a pruned model as safetensors + arch JSON, and rebuild it offline."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from prunesearch.errors import ModelNotFoundError
from prunesearch.hf import is_causal_lm
from prunesearch.paths import atomic_write_text
from prunesearch.prune.apply import ARCH_KEY, arch_of
from prunesearch.space import KINDS, adapter_for

ARCH_FILE = "arch.json"


def save(model: nn.Module, directory: str | Path, *, tokenizer=None) -> Path:
    """Write ``model.safetensors``, ``config.json`` and ``arch.json`` (per-layer kept
    sizes and unit indices) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arch = arch_of(model)
    # arch.json is the one record of the pruning; keep it out of config.json
    if arch is not None:
        delattr(model.config, ARCH_KEY)
    try:
        model.save_pretrained(directory, safe_serialization=True)
    finally:
        if arch is not None:
            setattr(model.config, ARCH_KEY, arch)
    if arch is not None:
        # save_pretrained may rename keys to a family's legacy checkpoint names (ViT in
        # transformers 5) that only from_pretrained maps back; a pruned model is rebuilt
        # module by module in load(), so store its own names (shared tensors once)
        for f in [*directory.glob("model*.safetensors"), *directory.glob("model.safetensors.index.json")]:
            f.unlink()
        save_model(model, str(directory / "model.safetensors"), metadata={"format": "pt"})
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    atomic_write_text(
        directory / ARCH_FILE,
        json.dumps(arch if arch is not None else {"format": 1, "dense": True}, indent=1),
    )
    return directory


def load(directory: str | Path) -> nn.Module:
    """Rebuild a saved (pruned or dense) model from its folder alone, in eval mode."""
    import transformers
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise ModelNotFoundError(f"{directory} holds no saved model (config.json missing)")
    weights = directory / "model.safetensors"
    if not weights.is_file():
        raise ModelNotFoundError(f"{directory} holds no model.safetensors")
    config = AutoConfig.from_pretrained(directory)
    arch_path = directory / ARCH_FILE
    arch = json.loads(arch_path.read_text()) if arch_path.is_file() else {"dense": True}
    # rebuild the class that was saved (a classifier keeps its head), else the Auto class
    archs = getattr(config, "architectures", None) or []
    cls = getattr(transformers, archs[0], None) if archs else None
    if cls is None:
        cls = AutoModelForCausalLM if is_causal_lm(config) else AutoModel
    if arch.get("dense") is True:
        return cls.from_pretrained(directory).eval()

    dense = copy.deepcopy(config)
    dense.num_hidden_layers = arch["dense"]["num_hidden_layers"]
    if arch["dense"].get("layer_types") is not None:
        dense.layer_types = arch["dense"]["layer_types"]
    model = cls.from_config(dense) if hasattr(cls, "from_config") else cls(dense)
    adapter = adapter_for(model)
    for i, layer in enumerate(arch["layers"]):
        for kind in KINDS:
            adapter.apply(i, kind, torch.tensor(layer[f"{kind}_units"], dtype=torch.long))
    adapter.finalize()
    try:
        missing, unexpected = load_model(model, weights, strict=False)
    except RuntimeError as exc:  # shapes differ from what arch.json rebuilt
        detail = next((l.strip() for l in str(exc).splitlines() if "size mismatch" in l), "shape mismatch")
        raise ModelNotFoundError(f"{weights} does not match {ARCH_FILE}: {detail}") from None
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied and not _is_tied(model, k)]
    if missing or unexpected:
        raise ModelNotFoundError(
            f"{weights} does not match {ARCH_FILE}: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    model.tie_weights()
    setattr(model.config, ARCH_KEY, arch)
    return model.eval()


def _is_tied(model: nn.Module, key: str) -> bool:
    return key.endswith("lm_head.weight") and getattr(model.config, "tie_word_embeddings", False)
