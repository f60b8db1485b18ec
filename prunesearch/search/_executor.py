"""Evaluate many configs in parallel: a local process pool by default, Ray tasks when one
machine is not enough. Executors only compute losses; SearchProblem stores them in order, so a
parallel run stores the same trials as a serial one."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Literal, Protocol

from prunesearch._config import Config
from prunesearch.errors import BackendUnavailableError, SpecError

Fitness = Callable[[Config, int], float]


class Executor(Protocol):
    def map(self, fitness: Fitness, configs: Sequence[Config], tokens: int) -> list[float]: ...

    def close(self) -> None: ...


_installed: Fitness | None = None  # the fitness a LocalExecutor worker process holds


def _install(fitness: Fitness, threads: int) -> None:
    global _installed
    _installed = fitness
    import torch

    torch.set_num_threads(threads)  # workers share the cores instead of each taking them all


def _call_installed(config: Config, tokens: int) -> float:
    return float(_installed(config, tokens))


class LocalExecutor:
    """A process pool whose workers receive the fitness (model, database, teacher outputs) once,
    when the pool starts, and then only configs; the fitness must be picklable."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.pool: ProcessPoolExecutor | None = None
        self.fitness: Fitness | None = None

    def map(self, fitness: Fitness, configs: Sequence[Config], tokens: int) -> list[float]:
        try:
            return self._map(fitness, configs, tokens)
        except BrokenProcessPool:  # a worker died (killed, out of memory): a fresh pool computes the batch again
            self.close()
            return self._map(fitness, configs, tokens)

    def _map(self, fitness: Fitness, configs: Sequence[Config], tokens: int) -> list[float]:
        if fitness is not self.fitness:
            self.close()
            threads = max(1, (os.cpu_count() or 1) // self.workers)
            self.pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_install, initargs=(fitness, threads))
            self.fitness = fitness
        return [float(x) for x in self.pool.map(_call_installed, configs, [tokens] * len(configs))]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool, self.fitness = None, None


def _call(fitness: Fitness, config: Config, tokens: int) -> float:
    return float(fitness(config, tokens))


class RayExecutor:
    """One Ray task per config; joins a running cluster (``address``, or the one this process is
    connected to) or starts a local one. A task whose worker dies (killed, out of memory, its node
    lost) is run again, up to ``RETRIES`` times: fitness is a pure function of (config, tokens), so
    a retry computes the same loss, and the store keeps each result once."""

    RETRIES = 3

    def __init__(self, workers: int | None = None, *, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise BackendUnavailableError("executor 'ray' needs Ray: pip install 'prunesearch[ray]'") from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            ray.init(
                address=address, num_cpus=None if address else workers, include_dashboard=False, log_to_driver=False
            )
        self.task = ray.remote(max_retries=self.RETRIES, retry_exceptions=False)(_call)
        self.fitness: Fitness | None = None
        self.ref = None

    def map(self, fitness: Fitness, configs: Sequence[Config], tokens: int) -> list[float]:
        if fitness is not self.fitness:  # ship the fitness (model, database, teacher outputs) once
            self.fitness, self.ref = fitness, self.ray.put(fitness)
        return [float(x) for x in self.ray.get([self.task.remote(self.ref, c, tokens) for c in configs])]

    def close(self) -> None:
        self.fitness, self.ref = None, None
        if self.started:
            self.ray.shutdown()


def make_executor(
    kind: Literal["local", "ray"] = "local", *, workers: int | None = None, address: str | None = None
) -> Executor:
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(workers, address=address)
    raise SpecError(f"executor {kind!r}: choose 'local' or 'ray'")
