"""Generation speed of a (pruned) decoder from two tables of one model on one device: time to
first token from a prefill table (the prompt's pass) and tokens per second from a decode table
(one new token with ``cache_len`` tokens in the KV cache)."""

from __future__ import annotations

from dataclasses import dataclass

from prunesearch._config import Config
from prunesearch.errors import TableError
from prunesearch.oracle._predictor import Predictor


@dataclass(frozen=True)
class DecoderSpeed:
    #: time to first token: the prefill of the prompt (the prefill table's seq_len tokens)
    ttft_ms: float
    #: one generated token per sequence at the decode table's cache_len
    decode_ms: float

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second per sequence (the batch's sequences generate in step)."""
        return 1000.0 / self.decode_ms


def decoder_speed(prefill: Predictor, decode: Predictor, config: Config) -> DecoderSpeed:
    """``config``'s predicted time to first token and decode speed; the two tables must be a
    prefill and a one-token decode table of the same model, batch and device."""
    p, d = prefill.table.conditions, decode.table.conditions
    if (p.phase, d.phase, d.seq_len) != ("prefill", "decode", 1):
        raise TableError(
            f"decoder speed needs a prefill table and a decode table of one new token per step; got phases "
            f"{p.phase!r} and {d.phase!r} (seq_len {d.seq_len})"
        )
    diff = [f for f in p.mismatch(d) if f not in ("seq_len", "phase", "cache_len")]
    if diff:
        raise TableError(f"the prefill and decode tables differ in {', '.join(diff)}: measure both under one condition")
    return DecoderSpeed(ttft_ms=prefill.config_latency_ms(config), decode_ms=decode.config_latency_ms(config))
