"""ONNX export of a (pruned) model with dynamic batch and sequence, checked against torch.

Text models take ``input_ids`` and ``attention_mask``; a ViT takes ``pixel_values`` of its own image
size. With ``cache_len`` a decoder is exported as one decode step: ``seq_len`` new tokens (1 when
generating; fixed in the graph, since attention takes a single-token path) after a KV cache of any
length (``cache_len`` is the example's) and any batch. Its inputs are ``input_ids``,
``attention_mask`` (over cached and new tokens), ``position_ids`` and ``past.{i}.key`` /
``past.{i}.value`` of shape (batch, KV heads, cache_len, head_dim) for each layer the cache holds:
the attention blocks left in the pruned model (a removed block has no KV), each with its own kept KV
heads. Inside, they become a transformers ``DynamicCache``; the output is the new tokens' logits
(appending to the cache is part of the step's work). ``precision`` fp16/bf16 exports a graph typed
in it (weights, float inputs and output), which is how TensorRT 11 and strongly typed builds take
their precision.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import DynamicCache

from prunesearch._workload import Workload
from prunesearch.standalone.run_bundle import feeds_for

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: bumped when the graphs written change (2: weights read only through a Transpose stored transposed), so that
#: graphs cached by an earlier version are written again
GRAPH_FORMAT = 2


class _TensorOutput(nn.Module):
    """Returns one tensor: last_hidden_state for encoders, logits for decoders; with ``decode``,
    the inputs after the mask are position_ids and each cached layer's past key and value."""

    def __init__(self, model: nn.Module, *, is_decoder: bool, decode: bool = False, pixels: bool = False) -> None:
        super().__init__()
        self.model = model
        self.is_decoder = is_decoder
        self.decode = decode
        self.pixels = pixels

    def forward(self, first: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        if self.pixels:
            return self.model(pixel_values=first).last_hidden_state
        input_ids, attention_mask, past = first, rest[0], rest[1:]
        if not self.is_decoder:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if not self.decode:
            return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        position_ids, *kv = past
        cache = DynamicCache(list(zip(kv[::2], kv[1::2]))) if kv else None
        return self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=cache is not None,
        ).logits


def takes_pixels(model: nn.Module) -> bool:
    from prunesearch.space import adapter_for

    return adapter_for(model).inputs == "pixels"


def tensor_module(model: nn.Module, *, decode: bool) -> _TensorOutput:
    """The model as the exported graph sees it: tensors in, one tensor out (torch profilers time this too)."""
    from prunesearch.space import adapter_for

    is_decoder = adapter_for(model).is_decoder
    if decode and not is_decoder:
        raise ValueError("a KV-cache decode step needs a decoder; this model is an encoder")
    # eval on the wrapper too: the exporter restores the wrapper's mode, and with it the model's
    return _TensorOutput(model.eval(), is_decoder=is_decoder, decode=decode, pixels=takes_pixels(model)).eval()


def cache_shapes(model: nn.Module) -> list[tuple[int, int]]:
    """(KV heads, head_dim) of each layer a decoder's KV cache holds, in cache order."""
    with torch.no_grad():
        cache = model.eval()(input_ids=torch.ones(1, 1, dtype=torch.long), use_cache=True).cache
    return [(l.keys.shape[1], l.keys.shape[3]) for l in cache.layers if l.keys is not None]


def example_inputs(
    model: nn.Module,
    *,
    batch: int,
    seq_len: int | None,
    cache_len: int | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Random token ids and a full mask (a ViT: random pixels of its image size); with ``cache_len``,
    also positions and random past keys/values. Float inputs take the model's own dtype."""
    g = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    if takes_pixels(model):
        c = model.config
        return {"pixel_values": torch.randn(batch, c.num_channels, c.image_size, c.image_size, generator=g).to(dtype)}
    vocab = model.config.vocab_size
    ids = torch.randint(3, vocab, (batch, seq_len), generator=g)
    if cache_len is None:
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones(batch, cache_len + seq_len, dtype=torch.long),
        "position_ids": torch.arange(cache_len, cache_len + seq_len).expand(batch, seq_len),
    }
    for i, (heads, head_dim) in enumerate(cache_shapes(model)):
        for kv in ("key", "value"):
            inputs[f"past.{i}.{kv}"] = torch.randn(batch, heads, cache_len, head_dim, generator=g).to(dtype)
    return inputs


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    batch: int = 1,
    seq_len: int | None = 128,
    cache_len: int | None = None,
    precision: str = "fp32",
    opset: int = 17,
    fold_constants: bool = False,
) -> Path:
    """Write ``model`` as ONNX (legacy TorchScript exporter: fast, and matches torch to ~1e-6) in
    ``precision``; with ``cache_len``, one decode step of a decoder (see the module docstring).

    ``fold_constants`` folds constant subgraphs, such as a tied output head's transpose, into new initializers at
    export. Off by default: ONNX Runtime and TensorRT fold them when they load the graph, so it runs the same (a
    dense SmolLM2 decode step: 0.959 ± 0.016x the folded graph's time, equal outputs), while folding stores the tied
    head twice (652 MB against 539 MB) and leaves the weights to the exporter, which serialises them three times
    over in memory: that export adds 2,440 MB at its peak, the default 1,041 MB (the 539 MB of weights read in
    included), in half the time (reports/onnx_export.md)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = PRECISIONS[precision]
    if dtype != torch.float32:
        import copy

        model = copy.deepcopy(model).to(dtype)
    wrapped = tensor_module(model, decode=cache_len is not None)
    inputs = example_inputs(model, batch=batch, seq_len=seq_len, cache_len=cache_len)
    if "pixel_values" in inputs:
        axes = {"pixel_values": {0: "batch"}, "output": {0: "batch"}}
    elif cache_len is None:
        tokens = {0: "batch", 1: "sequence"}
        axes = {"input_ids": tokens, "attention_mask": tokens, "output": tokens}
    else:
        axes = {
            "input_ids": {0: "batch"},
            "attention_mask": {0: "batch", 1: "total"},
            "position_ids": {0: "batch"},
            "output": {0: "batch"},
        }
        axes |= {name: {0: "batch", 2: "past"} for name in inputs if name.startswith("past.")}
    weights = _unique_weights(wrapped)
    # the exporter serialises a graph with its weights three times over in memory (its proto, the proto's bytes and
    # Python's copy of them), and its shape inference forms constants from them (each Linear's transposed weight:
    # SmolLM2's dense graph set a fresh search's peak, reports/memory_search_fresh.md): the weights go in as graph
    # inputs, of which it knows no values, and are streamed into the file after it, one at a time. Folded constants
    # exist only in the exporter, and past protobuf's 2 GB the exporter writes external data itself.
    streamed = not fold_constants and sum(t.numel() * t.element_size() for t in weights.values()) < PROTOBUF_LIMIT
    graph = io.BytesIO() if streamed else str(path)
    traced, names = (_WeightsAsInputs(wrapped, weights), [*inputs, *weights]) if streamed else (wrapped, [*inputs])
    args = (*inputs.values(), *weights.values()) if streamed else tuple(inputs.values())
    # The tracer warns about shape checks it freezes and about index ops with negative indices;
    # neither applies here, and check_onnx compares the graph with torch at another length.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        torch.onnx.export(
            traced,
            args,
            graph,
            input_names=names,
            output_names=["output"],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=fold_constants,
            dynamo=False,
        )
    if streamed:
        write_with_weights(graph.getvalue(), weights, path)
    return path


def _unique_weights(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s parameters and persistent buffers by state-dict name, each tensor once (a tied output head
    under its first name, as the exporter names it)."""
    seen: set[int] = set()
    unique = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        if id(tensor) not in seen:
            seen.add(id(tensor))
            unique[name] = tensor
    return unique


class _WeightsAsInputs(nn.Module):
    """``module`` with its weights (``_unique_weights``, in order) passed in after its own inputs. Not a submodule:
    the exporter sees a module without parameters. (torch.func.functional_call refuses to run under the tracer.)"""

    def __init__(self, module: nn.Module, weights: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.__dict__["inner"] = module
        self.__dict__["originals"] = list(weights.values())

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        from prunesearch.prune._apply import tensor_slots

        n = len(self.originals)
        inputs, given = args[:-n], dict(zip(map(id, self.originals), args[-n:]))
        # every slot holding a weight, a tied one in each of its modules
        swapped = [(slots, name, tensor) for slots, name, tensor in tensor_slots(self.inner) if id(tensor) in given]
        try:
            for slots, name, tensor in swapped:
                slots[name] = given[id(tensor)]
            return self.inner(*inputs)
        finally:
            for slots, name, tensor in swapped:
                slots[name] = tensor


#: protobuf's limit on one serialised message: larger ONNX models keep their weights in external files
PROTOBUF_LIMIT = 2**31 - 2**26


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(message, name: str, payload_size: int) -> bytes:
    """The key and length that start a length-delimited field ``name`` of ``payload_size`` bytes in ``message``."""
    return _varint(message.DESCRIPTOR.fields_by_name[name].number << 3 | 2) + _varint(payload_size)


def _tensor_type(dtype: torch.dtype) -> int:
    import onnx

    types = {
        torch.float32: onnx.TensorProto.FLOAT,
        torch.float16: onnx.TensorProto.FLOAT16,
        torch.bfloat16: onnx.TensorProto.BFLOAT16,
        torch.int64: onnx.TensorProto.INT64,
        torch.int32: onnx.TensorProto.INT32,
        torch.bool: onnx.TensorProto.BOOL,
    }
    if dtype not in types:
        raise TypeError(f"no ONNX initializer type for a {dtype} tensor")
    return types[dtype]


def _read_names(graph) -> set[str]:
    """Every value name a node of ``graph`` reads, in its subgraphs (If, Loop, Scan bodies) too."""

    names = set()
    for node in graph.node:
        names.update(node.input)
        for body in _subgraphs(node):
            names |= _read_names(body)
    return names


def _subgraphs(node) -> list:
    """The graphs ``node`` holds as attributes (If, Loop, Scan bodies)."""
    import onnx

    bodies = []
    for attribute in node.attribute:
        if attribute.type == onnx.AttributeProto.GRAPH:
            bodies.append(attribute.g)
        elif attribute.type == onnx.AttributeProto.GRAPHS:
            bodies.extend(attribute.graphs)
    return bodies


def _pretranspose(graph, weights: dict[str, torch.Tensor]) -> dict[str, str]:
    """Rewrite ``graph`` so that each 2-D weight its nodes read only through a Transpose is read as its own
    transposed initializer, ``<name>.T``, and drop those Transposes: {weight: the name it is written under,
    transposed}.

    The exporter feeds every Linear's weight through a Transpose; ONNX Runtime folds each into a new initializer
    when it loads the graph and keeps the freed originals' pages, so a session of SmolLM2's pruned decode graph
    (424 MB of weights) held 923-941 MB, against 591-651 MB with the weights stored transposed: the graph it runs
    is the same either way. A weight read elsewhere too (a tied head's token embeddings) is left as it is."""
    nested = set()  # names read inside subgraphs: neither a weight nor its Transpose's output is rewired there
    for node in graph.node:
        for body in _subgraphs(node):
            nested |= _read_names(body)
    outputs = {value.name for value in graph.output}
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def plain_transpose(node) -> bool:
        perm = [list(a.ints) for a in node.attribute if a.name == "perm"]
        out = node.output[0]
        return node.op_type == "Transpose" and perm in ([], [[1, 0]]) and out not in outputs and out not in nested

    renamed: dict[str, str] = {}
    read_as: dict[str, str] = {}  # a dropped Transpose's output -> the transposed weight read in its place
    for name, tensor in weights.items():
        nodes = readers.get(name, [])
        if tensor.dim() != 2 or name in nested or not nodes or not all(map(plain_transpose, nodes)):
            continue
        renamed[name] = f"{name}.T"
        read_as |= {n.output[0]: renamed[name] for n in nodes}
    # one pass over the nodes, however many weights: rewire readers, then drop the Transposes (by index, last first)
    dropped = []
    for i, node in enumerate(graph.node):
        if node.op_type == "Transpose" and node.output[0] in read_as:
            dropped.append(i)
        elif read_as.keys() & set(node.input):
            node.input[:] = [read_as.get(x, x) for x in node.input]
    for i in reversed(dropped):
        del graph.node[i]
    return renamed


def write_with_weights(graph: bytes, weights: dict[str, torch.Tensor], path: Path) -> None:
    """Write the ONNX model ``graph`` (exported without parameters: they are its inputs, named as in ``weights``)
    to ``path`` with those inputs as initializers, streamed one tensor at a time from its own memory (a weight read
    only through a Transpose stored transposed, ``_pretranspose``). Each is appended as a graph field holding one
    initializer; a protobuf parser merges repeated occurrences of a message field, so the file reads as one model
    whose graph holds them all."""
    import onnx

    model = onnx.load_model_from_string(graph)
    used = _read_names(model.graph)
    given = [i for i in model.graph.input if i.name in weights]
    for value in given:
        model.graph.input.remove(value)
    taken = [i.name for i in given if i.name in used]  # a weight no node reads (BERT's pooler) is left out
    renamed = _pretranspose(model.graph, {name: weights[name] for name in taken})
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
        for name in taken:
            tensor = weights[name].detach()
            tensor = (tensor.T if name in renamed else tensor).contiguous()
            raw = tensor.reshape(-1).view(torch.uint8).numpy()  # its bytes, little-endian, any dtype
            head = onnx.TensorProto(
                name=renamed.get(name, name), dims=list(tensor.shape), data_type=_tensor_type(tensor.dtype)
            ).SerializeToString()
            data = _field(onnx.TensorProto, "raw_data", raw.nbytes)
            initializer = len(head) + len(data) + raw.nbytes
            in_graph = _field(onnx.GraphProto, "initializer", initializer)
            f.write(_field(onnx.ModelProto, "graph", len(in_graph) + initializer) + in_graph + head + data)
            f.write(memoryview(raw))


def check_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    batch: int = 2,
    seq_len: int = 16,
    cache_len: int | None = None,
) -> float:
    """Max |ONNX Runtime − torch| on random inputs of another shape than the export's (fp32 graphs). The graph runs
    as written, without ONNX Runtime's graph optimisations: what is checked is the file, and its optimised copies
    and prepacked weights took 200 MB more beside it for SmolLM2 (timing runs the optimised graph)."""
    import onnxruntime as ort

    inputs = example_inputs(model, batch=batch, seq_len=seq_len, cache_len=cache_len, seed=1)
    with torch.no_grad():
        expected = tensor_module(model, decode=cache_len is not None)(*inputs.values()).numpy()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}  # a model with no attention left drops the mask
    got = session.run(None, {k: v.numpy() for k, v in inputs.items() if k in names})[0]
    return float(np.abs(got - expected).max())


def export_for(model: nn.Module, path: Path, workload: Workload, *, fold_constants: bool = False) -> Path:
    """``model`` as the graph ``workload`` times: a full pass, or one KV-cache decode step, typed in its precision."""
    w = workload
    return export_onnx(
        model,
        path,
        batch=w.batch,
        seq_len=w.seq_len,
        cache_len=w.cached,
        precision=w.precision,
        fold_constants=fold_constants,
    )


def vocab_of(model: nn.Module) -> int:
    """The vocabulary token ids are drawn from (a model taking pixels has none: 1)."""
    return getattr(model.config, "vocab_size", None) or 1


def graph_plan(workload: Workload, *, vocab: int) -> dict:
    """What ``run_bundle.graph_runner`` reads of a bundle's manifest: the workload and the vocabulary."""
    return {"workload": workload.workload().model_dump(), "vocab": vocab}


def graph_feeds(path: str | Path, *, workload: Workload, vocab: int) -> dict[str, np.ndarray]:
    """``run_bundle.feeds_for`` of an ONNX graph read with onnx, for backends without an ONNX Runtime session."""
    from types import SimpleNamespace

    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {w.name for w in graph.initializer}
    types = {onnx.TensorProto.FLOAT: "tensor(float)", onnx.TensorProto.FLOAT16: "tensor(float16)"}
    inputs = [
        SimpleNamespace(
            name=i.name,
            shape=[d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim],
            type=types.get(i.type.tensor_type.elem_type, "tensor(int64)"),
        )
        for i in graph.input
        if i.name not in weights
    ]
    return feeds_for(SimpleNamespace(get_inputs=lambda: inputs), plan=graph_plan(workload, vocab=vocab))
