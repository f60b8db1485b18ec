"""ONNX export of a (pruned) model with dynamic batch and sequence, checked against torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


class _TensorOutput(nn.Module):
    """Returns one tensor: last_hidden_state for encoders, logits for decoders (no cache)."""

    def __init__(self, model: nn.Module, *, is_decoder: bool) -> None:
        super().__init__()
        self.model = model
        self.is_decoder = is_decoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.is_decoder:
            return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def example_inputs(model: nn.Module, *, batch: int, seq_len: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    ids = torch.randint(3, vocab, (batch, seq_len), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _is_decoder(model: nn.Module) -> bool:
    from prunesearch.space import adapter_for

    return adapter_for(model).is_decoder


def export_onnx(model: nn.Module, path: str | Path, *, batch: int = 1, seq_len: int = 128, opset: int = 17) -> Path:
    """Write ``model`` as ONNX (legacy TorchScript exporter: fast, and matches torch to ~1e-6)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = _TensorOutput(model.eval(), is_decoder=_is_decoder(model))
    inputs = example_inputs(model, batch=batch, seq_len=seq_len)
    with torch.no_grad():
        torch.onnx.export(
            wrapped,
            (inputs["input_ids"], inputs["attention_mask"]),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["output"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                          "output": {0: "batch", 1: "sequence"}},
            opset_version=opset,
            dynamo=False,
        )
    return path


def check_onnx(model: nn.Module, path: str | Path, *, batch: int = 2, seq_len: int = 16) -> float:
    """Max |ONNX Runtime − torch| on random inputs of another shape than the export's."""
    import onnxruntime as ort

    inputs = example_inputs(model, batch=batch, seq_len=seq_len, seed=1)
    with torch.no_grad():
        expected = _TensorOutput(model.eval(), is_decoder=_is_decoder(model))(**inputs).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}  # a model with no attention left drops the mask
    got = session.run(None, {k: v.numpy() for k, v in inputs.items() if k in names})[0]
    return float(np.abs(got - expected).max())
