"""The workload: what one timed inference is, in one value.

A search spec's ``device`` section, a latency table's conditions, a remote-device bundle's manifest
and export.json all carry it, and profilers receive it whole: the backend and precision that run
the model, the batch, the inputs (token ids, or image pixels for a ViT), the phase (a full
encode/prefill pass, or one KV-cache decode step after ``cache_len`` cached tokens) and the host
threads.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, NonNegativeInt, PositiveInt, model_validator

Phase = Literal["encode", "prefill", "decode"]
Precision = Literal["fp32", "fp16", "bf16"]
Inputs = Literal["tokens", "pixels"]

#: tokens per run when a workload names none: a full pass of 128, or 1 new token per decode step
DEFAULT_TOKENS = 128
#: bytes per weight in each precision: what a model's size in MB counts
BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}


class Workload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str = "ort-cpu"
    precision: Precision = "fp32"
    batch: PositiveInt = 1
    #: tokens per run (a decode step's new tokens); pixel inputs take the model's image size instead
    seq_len: PositiveInt | None = None
    #: None: the model's full pass, "encode" for an encoder, "prefill" for a decoder
    phase: Phase | None = None
    cache_len: NonNegativeInt = 0
    threads: PositiveInt = 1
    #: None: what the model takes (token ids; a ViT, pixels)
    inputs: Inputs | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Workload:
        if self.phase == "decode" and self.cache_len == 0:
            raise ValueError("a decode-phase workload needs cache_len > 0 (the tokens already in the KV cache)")
        if self.phase != "decode" and self.cache_len:
            raise ValueError(f"cache_len {self.cache_len} is for the decode phase only; add phase: decode")
        return self

    def resolved(self, *, is_decoder: bool, inputs: Inputs) -> Workload:
        """This workload (its fields alone) with its defaults decided for a model that takes ``inputs``: the
        phase, and the tokens per run. ValueError naming the conflict where the model cannot run it."""
        if self.inputs not in (None, inputs):
            raise ValueError(f"the model takes {inputs}, not {self.inputs}")
        if self.phase == "decode" and not is_decoder:
            raise ValueError("a decode-phase workload needs a decoder; this model is an encoder")
        phase = self.phase or ("prefill" if is_decoder else "encode")
        tokens = None if inputs == "pixels" else self.seq_len or (1 if phase == "decode" else DEFAULT_TOKENS)
        if inputs == "pixels" and self.seq_len is not None:
            raise ValueError("the model takes pixels of its own image size: give no seq_len")
        return Workload.model_validate(
            self.workload().model_dump() | {"phase": phase, "seq_len": tokens, "inputs": inputs}
        )

    @property
    def cached(self) -> int | None:
        """The KV cache's length for a decode step, None for a full pass."""
        return self.cache_len if self.phase == "decode" else None

    def describe(self) -> str:
        shape = "pixels" if self.inputs == "pixels" else f"s{self.seq_len}"
        cache = f" c{self.cache_len}" if self.phase == "decode" else ""
        return (
            f"{self.backend} {self.precision} b{self.batch} {shape}{cache} t{self.threads} {self.phase or ''}".strip()
        )

    def workload(self) -> Workload:
        """The workload alone (a subclass, such as a table's conditions, carries more)."""
        return Workload.model_validate({k: getattr(self, k) for k in Workload.model_fields})
