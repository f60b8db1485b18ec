"""Where passes may run their matrix products in bf16: on a device that computes bf16 natively.

A CPU with AVX512-BF16 or AMX runs MiniLM's forward 2.5x faster under bf16 autocast than in fp32;
one without it emulates bf16 and gains nothing, so it stays in fp32. Autocast keeps norms, softmax
and losses in fp32; what is accumulated across batches (Gram matrices, optimiser states, the
weights) stays fp32 or wider.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager
from pathlib import Path

import torch

#: CPU flags (Linux /proc/cpuinfo) of native bf16 matrix products
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return frozenset(line.split(":", 1)[-1].split())


def bf16_native(device: torch.device | str) -> bool:
    """Whether ``device`` computes bf16 matrix products natively (a CUDA GPU that supports bf16; a CPU with
    AVX512-BF16 or AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and any(flag in _cpu_flags() for flag in _BF16_FLAGS)


def autocast(device: torch.device | str, *, enabled: bool = True) -> AbstractContextManager:
    """bf16 autocast on ``device`` where it computes bf16 natively (and ``enabled``), else a no-op.

    Without autocast's cache of trained weights' bf16 copies: every pass here is its own autocast region, in which
    each weight is read once (and once more where a checkpointed layer recomputes), so the cache saved no cast and
    held a bf16 copy of every trained weight until the pass ended (an export's recovery of a 1.6x SmolLM2 pick
    peaked 70 MB higher with it, reports/memory_export.md)."""
    device = torch.device(device)
    on = enabled and bf16_native(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=on, cache_enabled=False)
