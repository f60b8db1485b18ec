"""The conditions a latency table was measured under; a table answers only for its own."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from pydantic import PositiveInt, model_validator

from prunesearch._workload import Phase, Workload
from prunesearch.errors import PruneSearchError, TableError
from prunesearch.standalone import run_bundle

if TYPE_CHECKING:
    from prunesearch._models import LoadedModel
    from prunesearch.oracle._bundle import Results

__all__ = ["Conditions", "MATCHED", "Phase", "cpu_name", "device_slug"]

#: fields that must match for a table to answer a request (the rest is provenance); the backend's
#: version is matched on its major number (see ``Conditions.mismatch``)
MATCHED = (
    "device",
    "backend",
    "precision",
    "threads",
    "batch",
    "seq_len",
    "phase",
    "cache_len",
    "inputs",
    "model_hash",
    "ffn_step",
    "platform",
)


class Conditions(Workload):
    """A workload as measured: on which device, with which backend version, of which model."""

    device: str
    backend_version: str
    model: str
    model_hash: str
    ffn_step: PositiveInt
    #: what else on the device changes timings (a GPU's compute capability, driver and CUDA version,
    #: a Jetson's power mode), as the profiler read it; empty on a CPU
    platform: dict[str, str] = {}

    @model_validator(mode="after")
    def _resolved(self) -> Conditions:
        if self.phase is None or self.inputs is None or (self.inputs == "tokens" and self.seq_len is None):
            raise ValueError("a table's conditions name their phase, their inputs and, for tokens, their seq_len")
        return self

    @classmethod
    def here(cls, loaded: LoadedModel, workload: Workload, *, ffn_step: int) -> Conditions:
        """The conditions of a table of ``loaded`` under ``workload``, measured here with its backend (its name,
        version, device and platform; BackendUnavailableError where it cannot run here). The workload's
        defaults are decided for the model (``resolved_for``)."""
        from prunesearch.oracle.profilers import profiler_for

        w = resolved_for(loaded, workload)
        profiler = profiler_for(w.backend)
        profiler.check()
        profiler.supports(w)
        return cls(
            **w.model_dump(),
            device=profiler.device(),
            backend_version=profiler.version(),
            model=loaded.name,
            model_hash=loaded.weights_hash,
            ffn_step=ffn_step,
            platform=profiler.platform(),
        )

    @classmethod
    def of_results(cls, results: Results) -> Conditions:
        """The conditions a remote device measured a bundle under: the bundle's workload and model, the device's
        name, backend and platform as its run_bundle.py read them."""
        m = results.manifest
        return cls(
            **(m.workload.model_dump() | {"backend": results.backend}),
            device=results.device,
            backend_version=results.backend_version,
            model=m.model,
            model_hash=m.model_hash,
            ffn_step=m.ffn_step,
            platform=results.platform,
        )

    def with_workload(self, loaded: LoadedModel, workload: Workload, *, ffn_step: int) -> Conditions:
        """These conditions' device, backend version and platform under another workload and model: what a table
        of this device must have been measured under to answer for ``workload`` (a device not at hand, which only
        its table can describe)."""
        w = resolved_for(loaded, workload)
        return self.model_copy(
            update=w.model_dump() | {"model": loaded.name, "model_hash": loaded.weights_hash, "ffn_step": ffn_step}
        )

    def file_name(self) -> str:
        """The file a table of these conditions is shipped or cached as (within its device's folder)."""
        precision = "" if self.precision == "fp32" else f"-{self.precision}"
        shape = "" if self.inputs == "pixels" else f"-s{self.seq_len}"
        phase = (
            f"-decode-b{self.batch}{shape}-c{self.cache_len}" if self.phase == "decode" else f"-b{self.batch}{shape}"
        )
        return f"{self.model.replace('/', '_')}-{self.backend}{precision}{phase}-t{self.threads}.csv"

    def mismatch(self, other: Conditions) -> list[str]:
        diff = [f for f in MATCHED if getattr(self, f) != getattr(other, f)]
        if _major(self.backend_version) != _major(other.backend_version):
            diff.append("backend_version")
        return diff

    def require(self, other: Conditions, *, source: str, force: bool = False) -> None:
        """Refuse a table (``self``) measured under other conditions than ``other``."""
        diff = self.mismatch(other)
        if diff and not force:
            detail = "; ".join(f"{f}: table {getattr(self, f)!r}, wanted {getattr(other, f)!r}" for f in diff)
            raise TableError(
                f"{source} was measured under other conditions ({detail}); profile this device with "
                "`prunesearch profile`, or use it anyway with `search --force` (device.force: true in a spec)"
            )


def resolved_for(loaded: LoadedModel, workload: Workload) -> Workload:
    """``workload`` with its defaults decided for the model: the full pass is "encode" for an encoder and
    "prefill" for a decoder, of 128 tokens (a decode step: 1 new token); a ViT takes pixels."""
    from prunesearch.space import adapter_for

    try:
        return workload.resolved(is_decoder=loaded.is_decoder, inputs=adapter_for(loaded.model).inputs)
    except ValueError as exc:
        raise PruneSearchError(f"{loaded.name}: {exc}") from None


def _major(version: str) -> str:
    return version.split(".")[0]


#: the exact CPU model (machines of one kind can hide different CPUs); the bundle runner names devices alike
cpu_name = lru_cache(maxsize=1)(run_bundle.cpu_name)


def device_slug(device: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in device.lower()).strip("-").replace("--", "-")
