"""Facts read off a Hugging Face model config, shared by model loading (_models.py) and export reloading (_io.py)."""

from __future__ import annotations


def is_causal_lm(config) -> bool:
    """Whether the checkpoint's architecture generates text (``...ForCausalLM``, ``...LMHeadModel``)."""
    archs = getattr(config, "architectures", None) or []
    return any(a.endswith("ForCausalLM") or a.endswith("LMHeadModel") for a in archs)
