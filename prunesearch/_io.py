"""Save a pruned model as a self-contained Hugging Face folder, and rebuild it offline.

A pruned folder holds ``model.safetensors``, ``arch.json`` (the pruning record: per dense layer the kept
sizes and unit indices) and a ``config.json`` whose ``layer_sizes`` and ``auto_map`` point transformers at
``modeling_pruned.py``, copied beside it: ``AutoModel.from_pretrained(folder, trust_remote_code=True)`` loads
it where prunesearch is not installed. :func:`load` builds the same shapes with the same file (imported from
this package, so no remote code runs) and returns the plain transformers class that pruning made.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

from safetensors.torch import load_model, save_model
from torch import nn

from prunesearch._hf import is_causal_lm
from prunesearch._paths import atomic_write_text
from prunesearch.errors import ModelNotFoundError
from prunesearch.prune._apply import ARCH_KEY, arch_of
from prunesearch.standalone import modeling_pruned as standalone

ARCH_FILE = "arch.json"
MODELING_FILE = "modeling_pruned.py"
#: config.json keys that only the pruned classes read
PRUNED_KEYS = ("layer_sizes", "dense_layers", "auto_map")


def save(model: nn.Module, directory: str | Path, *, tokenizer=None) -> Path:
    """Write ``model.safetensors``, ``config.json`` and ``arch.json`` into ``directory``; a pruned model's
    folder also gets its modelling file and a config naming it (the module docstring)."""
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
        # module by module, so store its own names (shared tensors once)
        for f in [*directory.glob("model*.safetensors"), *directory.glob("model.safetensors.index.json")]:
            f.unlink()
        save_model(model, str(directory / "model.safetensors"), metadata={"format": "pt"})
        config = json.loads((directory / "config.json").read_text())
        atomic_write_text(directory / "config.json", json.dumps(pruned_config(model, config, arch), indent=2) + "\n")
        shutil.copyfile(standalone.__file__, directory / MODELING_FILE)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    atomic_write_text(
        directory / ARCH_FILE,
        json.dumps(arch if arch is not None else {"format": 1, "dense": True}, indent=1),
    )
    return directory


def pruned_config(model: nn.Module, config: dict, arch: dict) -> dict:
    """``config`` (what save_pretrained wrote for ``model``) turned into a pruned model's config.json."""
    if standalone.family_of(config["model_type"]) is None:
        raise ModelNotFoundError(
            f"model_type {config['model_type']!r} has no layout in prunesearch/standalone/{MODELING_FILE}: "
            "add one there so that its exports load"
        )
    sizes = standalone.layer_sizes(model)
    index = dense_indices(arch["layers"], sizes)
    return config | {
        "model_type": standalone.MODEL_TYPE_PREFIX + config["model_type"],
        "architectures": [standalone.PREFIX + type(model).__name__],
        "auto_map": auto_map(model),
        "layer_sizes": [{"layer": i, **s} for i, s in zip(index, sizes)],
        "dense_layers": arch["dense"],
    }


def dense_indices(record: list[dict], sizes: list[dict]) -> list[int]:
    """The dense layer each of a pruned model's layers (``sizes``, in order) was, from the pruning record.

    Only layers with every block removed are ever dropped. Of those, which were kept changes nothing they
    compute (each block is a constant), so the earliest fitting ones are taken."""
    out, j = [], 0
    for i, layer in enumerate(record):
        empty = layer["heads"] == 0 and layer["ffn"] == 0
        blocks_left = sum(1 for later in record[i + 1 :] if later["heads"] or later["ffn"])
        fits = j < len(sizes) and (layer["heads"], layer["ffn"]) == (sizes[j]["heads"], sizes[j]["ffn"])
        if fits and (not empty or len(sizes) - j > blocks_left):
            out.append(i)
            j += 1
        elif not empty:
            raise ModelNotFoundError(f"the model's layers {sizes} do not follow its pruning record {record}")
    if j != len(sizes):
        raise ModelNotFoundError(f"the model's layers {sizes} do not follow its pruning record {record}")
    return out


def auto_map(model: nn.Module) -> dict[str, str]:
    """config.json's ``auto_map``: the config, and each Auto class that maps this config to the saved class
    or to its base model, pointed at the modelling file's ``Pruned`` classes."""
    import transformers

    module = Path(MODELING_FILE).stem
    names = {"AutoConfig": f"{module}.{standalone.PREFIX}{type(model.config).__name__}"}
    targets = {type(model), type(model.base_model)}
    for auto in sorted(n for n in dir(transformers) if n.startswith("AutoModel")):
        mapping = getattr(getattr(transformers, auto), "_model_mapping", None)
        try:
            cls = mapping[type(model.config)] if mapping is not None else None
        except KeyError:
            continue
        if cls in targets:
            names[auto] = f"{module}.{standalone.PREFIX}{cls.__name__}"
    return names


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
    arch_path = directory / ARCH_FILE
    arch = json.loads(arch_path.read_text()) if arch_path.is_file() else {"dense": True}
    raw = json.loads((directory / "config.json").read_text())
    if arch.get("dense") is True:
        config = AutoConfig.from_pretrained(directory)
        archs = getattr(config, "architectures", None) or []
        cls = getattr(transformers, archs[0], None) if archs else None
        if cls is None:
            cls = AutoModelForCausalLM if is_causal_lm(config) else AutoModel
        return cls.from_pretrained(directory).eval()
    register_configs()
    if "layer_sizes" not in raw:
        raise ModelNotFoundError(
            f"{directory} was written by an older prunesearch (config.json has no layer_sizes); export it again"
        )
    # the class pruning made (a classifier keeps its head), with the config it had
    name = raw["architectures"][0].removeprefix(standalone.PREFIX)
    cls = getattr(transformers, name)
    plain = {k: v for k, v in raw.items() if k not in PRUNED_KEYS} | {
        "model_type": raw["model_type"].removeprefix(standalone.MODEL_TYPE_PREFIX),
        "architectures": [name],
    }
    config = cls.config_class.from_dict(plain)
    model = standalone.build(cls, config, layer_sizes=raw["layer_sizes"], dense=raw["dense_layers"])
    try:
        missing, unexpected = load_model(model, weights, strict=False)
    except RuntimeError as exc:  # shapes differ from what config.json describes
        detail = next((l.strip() for l in str(exc).splitlines() if "size mismatch" in l), "shape mismatch")
        raise ModelNotFoundError(f"{weights} does not match config.json's layer_sizes: {detail}") from None
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied and not _is_tied(model, k)]
    if missing or unexpected:
        raise ModelNotFoundError(
            f"{weights} does not match config.json's layer_sizes: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    model.tie_weights()
    setattr(model.config, ARCH_KEY, arch)
    return model.eval()


@functools.cache
def register_configs() -> None:
    """Let transformers' AutoConfig read pruned folders in this process from this package's copy of the
    modelling file: AutoTokenizer reads a folder's config.json first, and would otherwise ask to run the
    folder's copy (trust_remote_code)."""
    from transformers import CONFIG_MAPPING, AutoConfig

    for _, types in standalone.FAMILIES.values():
        for model_type in types:
            pruned = getattr(standalone, standalone.PREFIX + CONFIG_MAPPING[model_type].__name__)
            AutoConfig.register(pruned.model_type, pruned, exist_ok=True)


def _is_tied(model: nn.Module, key: str) -> bool:
    return key.endswith("lm_head.weight") and getattr(model.config, "tie_word_embeddings", False)
