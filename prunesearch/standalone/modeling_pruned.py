"""Transformers whose layers differ in size: their modules rebuilt from per-layer sizes.

This file imports only torch and transformers. An export carries it as ``modeling_pruned.py`` and names its
classes in config.json's ``auto_map``, so ``AutoModel.from_pretrained(folder, trust_remote_code=True)`` loads
the export where prunesearch is not installed; prunesearch._io.load builds pruned models with it as well, so
there is one way a pruned model's shapes are made.

config.json keeps the dense model's sizes (head size, KV groups, widths) and adds

- ``layer_sizes``: per layer the model has, ``{"layer": its index in the dense model, "heads": kept query
  heads, "ffn": kept FFN width}``; 0 removes that block, which then outputs a constant (its bias, or zeros);
- ``dense_layers``: ``{"num_hidden_layers": ..., "layer_types": ...}`` of the dense model. Pre-LN models drop
  layers whose blocks are all removed (their constants are folded into the weights before them); the dense
  layers are built, so that whatever a layer fixes at build time from its index stays as it was, and the
  dropped ones are discarded.

Classes are named ``Pruned`` + a transformers class (``PrunedBertModel``, ``PrunedLlamaForCausalLM``,
``PrunedBertConfig``): that class with its layers resized, made on first use.
"""

from __future__ import annotations

from torch import nn

PREFIX = "Pruned"
MODEL_TYPE_PREFIX = "pruned_"
KINDS = ("attn", "ffn")


class BiasOnly(nn.Module):
    """A projection whose inputs are all gone: it outputs its bias, or zeros when the
    projection had none (then it holds no parameter, as the dense model held none).

    It takes the shape of its input's leading dimensions and ignores the values,
    which is what the dense projection does when every input unit is masked.
    """

    def __init__(self, bias, *, size=None, returns_tuple=False):
        super().__init__()
        if bias is None and size is None:
            raise ValueError("BiasOnly needs a bias or an output size")
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None
        self.size = int(bias.shape[0]) if bias is not None else int(size)
        self.returns_tuple = returns_tuple

    def forward(self, hidden_states, *args, **kwargs):
        shape = (*hidden_states.shape[:-1], self.size)
        if self.bias is None:
            out = hidden_states.new_zeros(shape)
        else:
            out = self.bias.expand(shape)
        return (out, None) if self.returns_tuple else out


class Passthrough(nn.Module):
    """Hands its first input on unchanged (the input side of a removed block)."""

    def __init__(self, *, returns_tuple=False):
        super().__init__()
        self.returns_tuple = returns_tuple

    def forward(self, hidden_states, *args, **kwargs):
        return (hidden_states, None) if self.returns_tuple else hidden_states


class Layout:
    """Where one family keeps its blocks (transformers 5 names), relative to a layer.

    ``inputs[kind]``: the projections whose output rows belong to the units (attention: query first, then
    key and value; a fused ``[q | k | v]`` projection is one name with ``fused``); ``outputs[kind]``: the
    projection whose input columns do. Post-LN families (``blocks`` None) replace a removed block's input
    holder by Passthrough and its output projection by BiasOnly; pre-LN families replace the whole block
    module ``blocks[kind]`` by BiasOnly.
    """

    def __init__(self, *, layers, inputs, outputs, holders=None, blocks=None, fused=False, decoder=False):
        self.layers = layers
        self.inputs = inputs
        self.outputs = outputs
        self.holders = holders
        self.blocks = blocks
        self.fused = fused
        self.decoder = decoder


BERT = Layout(
    layers="encoder.layer",
    holders={"attn": "attention.self", "ffn": "intermediate"},
    inputs={"attn": ("query", "key", "value"), "ffn": ("dense",)},
    outputs={"attn": "attention.output.dense", "ffn": "output.dense"},
)
LLAMA = Layout(
    layers="layers",
    blocks={"attn": "self_attn", "ffn": "mlp"},
    inputs={"attn": ("q_proj", "k_proj", "v_proj"), "ffn": ("gate_proj", "up_proj")},
    outputs={"attn": "o_proj", "ffn": "down_proj"},
    decoder=True,
)
GPT2 = Layout(
    layers="h",
    blocks={"attn": "attn", "ffn": "mlp"},
    inputs={"attn": ("c_attn",), "ffn": ("c_fc",)},
    outputs={"attn": "c_proj", "ffn": "c_proj"},
    fused=True,
    decoder=True,
)
VIT = Layout(
    layers="layers",
    blocks={"attn": "attention", "ffn": "mlp"},
    inputs={"attn": ("q_proj", "k_proj", "v_proj"), "ffn": ("fc1",)},
    outputs={"attn": "o_proj", "ffn": "fc2"},
)
#: family -> (its layout, the Hugging Face model types that share it)
FAMILIES = {
    "bert": (BERT, ("bert", "roberta", "xlm-roberta", "camembert", "electra")),
    "llama": (LLAMA, ("llama", "qwen2", "mistral", "qwen3")),
    "gpt2": (GPT2, ("gpt2",)),
    "vit": (VIT, ("vit",)),
}


def family_of(model_type):
    """The family whose layout a Hugging Face ``model_type`` has (None if this file knows none)."""
    base = model_type.removeprefix(MODEL_TYPE_PREFIX)
    return next((name for name, (_, types) in FAMILIES.items() if base in types), None)


def _layout(config):
    family = family_of(config.model_type)
    if family is None:
        raise ValueError(f"no pruned layout for model_type {config.model_type!r}")
    return FAMILIES[family][0]


def _get(module, path):
    for name in path.split("."):
        module = getattr(module, name)
    return module


def _set(module, path, value):
    *parents, name = path.split(".")
    setattr(_get(module, ".".join(parents)) if parents else module, name, value)


def _weight_shape(module):
    """(out_features, in_features) of a Linear or a GPT-2 style Conv1D (which stores (in, out))."""
    rows, cols = module.weight.shape
    return (cols, rows) if type(module).__name__ == "Conv1D" else (rows, cols)


def _linear(like, *, rows=None, cols=None):
    """An empty nn.Linear shaped as ``like`` with ``rows`` outputs / ``cols`` inputs, bias as ``like``'s.

    A resized Conv1D becomes nn.Linear (same maths), as pruning slices it."""
    out, inp = _weight_shape(like)
    w = like.weight
    return nn.Linear(
        inp if cols is None else cols,
        out if rows is None else rows,
        bias=like.bias is not None,
        device=w.device,
        dtype=w.dtype,
    )


def _dims(config):
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return heads, heads // kv, head_dim


def _removed(layer, layout, kind):
    if layout.blocks is not None:
        return isinstance(_get(layer, layout.blocks[kind]), BiasOnly)
    return isinstance(_get(layer, layout.holders[kind]), Passthrough)


def _holder(layer, layout, kind):
    return _get(layer, layout.blocks[kind] if layout.blocks is not None else layout.holders[kind])


def _output_path(layout, kind):
    return layout.outputs[kind] if layout.blocks is None else f"{layout.blocks[kind]}.{layout.outputs[kind]}"


def _sizes_of(layer, layout, head_dim):
    """(kept query heads, kept FFN width) of one layer."""
    thirds = 3 if layout.fused else 1
    sizes = []
    for kind in KINDS:
        if _removed(layer, layout, kind):
            sizes.append(0)
            continue
        rows, _ = _weight_shape(getattr(_holder(layer, layout, kind), layout.inputs[kind][0]))
        sizes.append(rows // (head_dim * thirds) if kind == "attn" else rows)
    return sizes


def layer_sizes(model):
    """Per layer ``model`` has, its kept query heads and FFN width, read off its modules."""
    layout = _layout(model.config)
    head_dim = _dims(model.config)[2]
    layers = _get(model.base_model, layout.layers)
    return [dict(zip(("heads", "ffn"), _sizes_of(layer, layout, head_dim))) for layer in layers]


def _remove(layer, layout, kind, hidden):
    out = _get(layer, _output_path(layout, kind))
    bias = None if out.bias is None else out.bias.detach()
    if layout.blocks is None:  # post-LN: the norm after the block stays, fed the residual plus a constant
        _set(layer, layout.holders[kind], Passthrough(returns_tuple=kind == "attn"))
        _set(layer, layout.outputs[kind], BiasOnly(bias, size=hidden))
    else:  # pre-LN: the whole block (its norm lives outside) becomes its constant
        _set(layer, layout.blocks[kind], BiasOnly(bias, size=hidden, returns_tuple=kind == "attn"))


def _resize_attention(layer, layout, heads, *, per_group, head_dim):
    holder = _holder(layer, layout, "attn")
    if heads % per_group:
        raise ValueError(f"{heads} query heads are not whole KV groups of {per_group}")
    width = heads * head_dim
    names = layout.inputs["attn"]
    if layout.fused:  # [q | k | v], each a third
        setattr(holder, names[0], _linear(getattr(holder, names[0]), rows=3 * width))
        holder.split_size = width
        holder.num_heads = heads
    else:
        q, *kv = names
        setattr(holder, q, _linear(getattr(holder, q), rows=width))
        for name in kv:
            setattr(holder, name, _linear(getattr(holder, name), rows=width // per_group))
    if layout.blocks is None:  # BertSelfAttention keeps its head count
        holder.num_attention_heads = heads
        holder.all_head_size = width
    path = _output_path(layout, "attn")
    _set(layer, path, _linear(_get(layer, path), cols=width))


def _resize_ffn(layer, layout, width):
    holder = _holder(layer, layout, "ffn")
    for name in layout.inputs["ffn"]:
        setattr(holder, name, _linear(getattr(holder, name), rows=width))
    path = _output_path(layout, "ffn")
    _set(layer, path, _linear(_get(layer, path), cols=width))


def resize(model, layer_sizes):
    """Resize ``model`` (built with its dense layers) in place to ``layer_sizes`` (see the module docstring):
    blocks to their kept sizes, dropped layers discarded, decoders' KV-cache slots renumbered. The new
    modules are empty: the weights are loaded after."""
    config = model.config
    layout = _layout(config)
    heads, per_group, head_dim = _dims(config)
    layers = _get(model.base_model, layout.layers)
    kept = []
    for entry in layer_sizes:
        layer = layers[entry["layer"]]
        current = dict(zip(KINDS, _sizes_of(layer, layout, head_dim)))
        for kind, size in (("attn", entry["heads"]), ("ffn", entry["ffn"])):
            if size == current[kind]:
                continue  # all units kept: the dense module stays (a GPT-2 Conv1D stays a Conv1D)
            if size == 0:
                _remove(layer, layout, kind, config.hidden_size)
            elif kind == "attn":
                _resize_attention(layer, layout, size, per_group=per_group, head_dim=head_dim)
            else:
                _resize_ffn(layer, layout, size)
        kept.append(layer)
    if len(kept) < len(layers):
        _set(model.base_model, layout.layers, nn.ModuleList(kept))
    if layout.decoder:
        # cache slots are indexed by layer_idx: number the remaining attentions 0..n-1,
        # so slot 0 (whose length sets the positions of new tokens) is always written
        attentions = [_get(layer, layout.blocks["attn"]) for layer in kept]
        for idx, attn in enumerate(a for a in attentions if not isinstance(a, BiasOnly)):
            attn.layer_idx = idx
    return model


class DenseLayers:
    """``with DenseLayers(config, dense):`` ``config`` describes the dense model's layers (``dense``: its
    ``dense_layers``) while a model is built, and the pruned model's after."""

    def __init__(self, config, dense):
        self.config, self.dense = config, dense

    def __enter__(self):
        self.kept = self.config.num_hidden_layers, getattr(self.config, "layer_types", None)
        self.config.num_hidden_layers = self.dense["num_hidden_layers"]
        if self.dense.get("layer_types") is not None:
            self.config.layer_types = list(self.dense["layer_types"])
        return self.config

    def __exit__(self, *exc):
        self.config.num_hidden_layers = self.kept[0]
        if self.dense.get("layer_types") is not None:
            self.config.layer_types = self.kept[1]
        return False


def build(cls, config, *, layer_sizes, dense):
    """A ``cls`` model (a transformers class) of ``config`` with the pruned shapes ``layer_sizes`` and
    ``dense`` (config.json's ``dense_layers``) describe, its weights not loaded."""
    with DenseLayers(config, dense):
        model = cls._from_config(config)
    return resize(model, layer_sizes)


def _config_class(base):
    return type(
        PREFIX + base.__name__,
        (base,),
        {"model_type": MODEL_TYPE_PREFIX + base.model_type, "__module__": __name__, "__doc__": base.__doc__},
    )


def _model_class(base):
    def __init__(self, config, *args, **kwargs):
        with DenseLayers(config, config.dense_layers):
            base.__init__(self, config, *args, **kwargs)
        resize(self, config.layer_sizes)

    return type(
        PREFIX + base.__name__,
        (base,),
        {
            "__init__": __init__,
            "config_class": __getattr__(PREFIX + base.config_class.__name__),
            "__module__": __name__,
            "__doc__": f"{base.__name__} with per-layer sizes (``config.layer_sizes``).",
        },
    )


def __getattr__(name):
    """``Pruned<X>`` for a transformers class ``X`` of a family this file knows, made once."""
    if not name.startswith(PREFIX):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import transformers  # here, not at the top: importing what uses BiasOnly stays cheap

    base = getattr(transformers, name[len(PREFIX) :], None)
    config_class = base if isinstance(base, type) and issubclass(base, transformers.PretrainedConfig) else None
    if isinstance(base, type) and issubclass(base, transformers.PreTrainedModel):
        config_class = base.config_class
    if config_class is None or family_of(config_class.model_type) is None:
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r}: no pruned layout for {name[len(PREFIX) :]}"
        )
    made = _config_class(base) if base is config_class else _model_class(base)
    globals()[name] = made
    return made
