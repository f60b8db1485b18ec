"""The profiler interface every backend implements, and the pieces backends share.

A profiler opens a *runner* for one whole model under fixed conditions (``runner(...).block(n)``
times n inferences); models are always timed side by side with the dense model by one schedule,
``run_bundle.time_paired``, so tables of any backend mean the same. ONNX Runtime backends run that
schedule in a clean child process (``child_ep``, see measure.py); the others in this process.
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Literal

from torch import nn

from prunesearch._registry import Registry
from prunesearch._workload import Workload
from prunesearch.errors import BackendUnavailableError, PruneSearchError
from prunesearch.standalone import run_bundle
from prunesearch.standalone.run_bundle import CallRunner, cpu_name


class Profiler(ABC):
    """One measurement backend. ``check`` before use: the other methods assume it passed."""

    #: the backend as table Conditions record it ("ort-cpu", "tensorrt", "torch-cuda", ...)
    name: ClassVar[str]
    #: what a runner times: an exported ONNX graph (its path) or the pruned torch module itself
    takes: ClassVar[Literal["onnx", "torch"]]
    #: whether it times a GPU (the device recorded is then the GPU, not the host CPU)
    on_gpu: ClassVar[bool] = False
    #: the ONNX Runtime execution provider ("cpu", "cuda", "tensorrt") this backend is timed with in a clean
    #: child process running run_bundle.py; None: timed in this process through ``runner``
    child_ep: ClassVar[str | None] = None

    @abstractmethod
    def check(self) -> None:
        """Raise BackendUnavailableError, naming what to install, where this backend cannot run here."""

    @abstractmethod
    def version(self) -> str:
        """The backend's version, recorded with every table it measures."""

    def device(self) -> str:
        """The device timed: the exact CPU model, or the GPU model and its driver."""
        return gpu_name() if self.on_gpu else cpu_name()

    #: the precisions it can time
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)

    def platform(self) -> dict[str, str]:
        """What else on the device changes timings, recorded with (and matched by) every table: empty on a CPU;
        a GPU's compute capability, driver and CUDA version (see ``gpu_platform``)."""
        return gpu_platform() if self.on_gpu else {}

    def at_hand(self, conditions) -> bool:
        """Whether models can be timed here for a table of ``conditions``: this backend runs here, on the device
        (and platform) the table was measured on."""
        try:
            self.check()
        except BackendUnavailableError:
            return False
        return self.device() == conditions.device and self.platform() == conditions.platform

    def supports(self, workload: Workload) -> None:
        """Refuse a workload this backend cannot time as asked (a precision it does not run)."""
        if workload.precision not in self.precisions:
            raise PruneSearchError(
                f"backend {self.name!r} times {', '.join(self.precisions)} only, not {workload.precision}: "
                f"choose one of them, or a backend that runs {workload.precision}"
            )

    @abstractmethod
    def runner(self, model: Path | nn.Module, *, workload: Workload, vocab: int) -> CallRunner:
        """A runner of ``model`` (a graph path or a module, per ``takes``) under ``workload``: its batch and
        inputs (a KV-cache decode step where its phase is decode), precision and host threads."""

    @contextmanager
    def timing(self, workload: Workload) -> Iterator[None]:
        """Held while models are timed in this process (a backend's process-wide settings)."""
        yield

    def time_in_process(
        self,
        models: Mapping[str, Callable[[], Path | nn.Module]],
        *,
        reference: Path | nn.Module,
        workload: Workload,
        vocab: int,
        options: dict,
        on_settled=None,
        power_s: float = 0.0,
    ) -> dict:
        """``run_bundle.time_paired`` over this backend's runners (``options``: a TimingOptions' fields): each
        model built when its group is timed (a group holds as many models as the reference's size fits
        ``memory_gb`` times; one with ``memory_gb`` None). With ``power_s`` and an energy meter, each model
        then runs ``power_s`` seconds back to back for its energy per inference."""
        with self.timing(workload):
            ref = self.runner(reference, workload=workload, vocab=vocab)
            try:
                jobs = {
                    name: (lambda build=build: self.runner(build(), workload=workload, vocab=vocab))
                    for name, build in models.items()
                }
                size = model_bytes(reference)  # a pruned model's size is known only once it is built
                results = run_bundle.time_paired(
                    ref,
                    jobs,
                    sizes={name: size for name in jobs},
                    reference_size=size,
                    on_settled=on_settled,
                    **options,
                )
                meter = self.energy_meter() if power_s > 0 else None
                if meter is not None:
                    from prunesearch.oracle.power import energy_per_run

                    results["reference"]["energy_mj"] = energy_per_run(ref.step, meter, seconds=power_s)
                    for name, open_runner in jobs.items():
                        runner = open_runner()
                        try:
                            results["jobs"][name]["energy_mj"] = energy_per_run(runner.step, meter, seconds=power_s)
                        finally:
                            runner.close()
                return results
            finally:
                ref.close()

    def energy_meter(self):
        """The counter energy per inference is read from where a table asks for energy (``power_s``):
        NVML on an NVIDIA GPU; None where this backend has none (a CPU's RAPL counts every tenant of
        a shared machine, so it is not used)."""
        if not self.on_gpu:
            return None
        from prunesearch.oracle.power import NvmlEnergy

        try:
            return NvmlEnergy()
        except BackendUnavailableError:
            return None

    def reads_energy(self) -> bool:
        """Whether timing with ``power_s`` gives energy here: a board's power rails for a child-process
        backend (run_bundle reads them), else this backend's energy meter."""
        if self.child_ep is not None:
            return run_bundle.power_source() is not None
        return self.energy_meter() is not None

    def unavailable(self, reason: str) -> BackendUnavailableError:
        return BackendUnavailableError(f"backend {self.name!r} is not available here: {reason}")


def model_bytes(model: Path | nn.Module) -> int:
    """A graph file's size, or a module's parameter bytes."""
    if isinstance(model, Path):
        return model.stat().st_size
    return sum(p.numel() * p.element_size() for p in model.parameters())


#: every backend by the name table Conditions record; each module of prunesearch.oracle.profilers registers its own
PROFILERS: Registry[type[Profiler]] = Registry("backend", package="prunesearch.oracle.profilers")


def register_profiler(cls: type[Profiler]) -> type[Profiler]:
    """Make a backend known to workloads, specs and ``prunesearch profile`` (a class decorator)."""
    return PROFILERS.register(cls.name, cls)


def profiler_for(backend: str) -> Profiler:
    """The profiler of ``backend``; whether it can run here is its ``check()``."""
    return PROFILERS[backend]()


def cuda_step(launch: Callable[[], object]) -> Callable[[], None]:
    """One synchronised inference: ``launch`` enqueues it on torch's current CUDA stream. Replayed from a CUDA
    graph where the work can be captured, as a deployed server runs it (the timing is then the GPU's work, not
    Python's kernel launches); launched as is where capture fails (host syncs, data-dependent shapes)."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # capture needs warm-up on a side stream (lazy init, TensorRT's deferred updates)
        for _ in range(3):
            launch()
    torch.cuda.synchronize()
    graph: torch.cuda.CUDAGraph | None = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            launch()
    except RuntimeError:  # not capturable: time plain launches rather than fail the table
        graph = None
        torch.cuda.synchronize()

    def step() -> None:
        if graph is not None:
            graph.replay()
        else:
            launch()
        torch.cuda.synchronize()

    return step


@lru_cache(maxsize=1)
def gpu_platform() -> dict[str, str]:
    """The first GPU's compute capability, its driver and the CUDA runtime torch was built with (a table from
    another driver or CUDA major version is another table); a Jetson's power mode (``nvpmodel -q``) where that
    tool answers."""
    facts = {"driver": gpu_name().rsplit("(driver ", 1)[-1].rstrip(")")}
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            facts |= {"compute_capability": f"{major}.{minor}", "cuda": str(torch.version.cuda)}
    except ImportError:
        pass
    try:
        out = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    if "Power Mode" in out:
        facts["power_mode"] = out.split("Power Mode:", 1)[-1].splitlines()[0].strip()
    return facts


@lru_cache(maxsize=1)
def gpu_name() -> str:
    """The first GPU's model and driver ("NVIDIA H100 80GB HBM3 (driver 550.54.15)"): one GPU times differently
    under another driver. Read through NVML (nvidia-ml-py) where installed, else its command line, nvidia-smi."""
    try:
        import pynvml
    except ImportError:
        pynvml = None
    if pynvml is None:
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            raise BackendUnavailableError(
                "no NVIDIA GPU here: nvidia-smi (part of the NVIDIA driver) did not answer"
            ) from None
        if "," not in out:
            raise BackendUnavailableError(f"no NVIDIA GPU here: nvidia-smi lists none ({out.strip()!r})")
        name, driver = out.splitlines()[0].rsplit(",", 1)
        return f"{name.strip()} (driver {driver.strip()})"
    try:
        pynvml.nvmlInit()
        name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
        driver = pynvml.nvmlSystemGetDriverVersion()
    except pynvml.NVMLError as err:
        raise BackendUnavailableError(f"no NVIDIA GPU here: NVML did not answer ({err})") from None
    name, driver = (v.decode() if isinstance(v, bytes) else v for v in (name, driver))  # older NVML bindings: bytes
    return f"{name} (driver {driver})"
