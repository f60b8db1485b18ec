"""Genome operators: small classes with one ``do()`` and an explicit random generator."""

from __future__ import annotations

import numpy as np

from prunesearch.search.problem import SearchProblem


class Repair:
    """Lower random levels one step at a time until the predicted latency meets the budget."""

    def __init__(self, problem: SearchProblem) -> None:
        self.problem = problem

    def do(self, genome: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        genome = np.clip(np.asarray(genome, dtype=np.int64), 0, self.problem.space.genome_upper)
        while not self.problem.feasible(genome)[0]:
            raised = np.flatnonzero(genome > 0)
            genome[rng.choice(raised)] -= 1
        return genome


class LevelSwitchMutation:
    """DarwinLM's level switch: raise one block's level and lower another block of the same
    kind (attention with attention, FFN with FFN), min(U{1..3}, U{1..3}) times. A switch that
    breaks the latency budget is redrawn, so offspring stay feasible."""

    def __init__(self, problem: SearchProblem, *, max_tries: int = 64) -> None:
        self.problem = problem
        self.upper = problem.space.genome_upper
        self.max_tries = max_tries

    def do(self, genome: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        child = np.asarray(genome, dtype=np.int64).copy()
        n_switches = min(rng.integers(1, 4), rng.integers(1, 4))
        for _ in range(n_switches):
            for _ in range(self.max_tries):
                trial = self._switch(child, rng)
                if trial is not None and self.problem.feasible(trial)[0]:
                    child = trial
                    break
        return child

    def _switch(self, genome: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
        kind = rng.integers(0, 2)  # 0: attention entries, 1: FFN entries
        idx = np.arange(kind, len(genome), 2)
        up = idx[genome[idx] < self.upper[idx]]
        down = idx[genome[idx] > 0]
        if len(up) == 0 or len(down) == 0:
            return None
        i, j = rng.choice(up), rng.choice(down)
        if i == j:
            return None
        trial = genome.copy()
        trial[i] += 1
        trial[j] -= 1
        return trial


class RandomSampling:
    """Uniform random levels, repaired into the budget."""

    def __init__(self, problem: SearchProblem) -> None:
        self.problem = problem
        self.repair = Repair(problem)

    def do(self, rng: np.random.Generator) -> np.ndarray:
        upper = self.problem.space.genome_upper
        return self.repair.do(rng.integers(0, upper + 1), rng)


def uniform_start(problem: SearchProblem) -> np.ndarray:
    """The largest uniform config (same kept fraction in every block) within the budget."""
    space = problem.space
    best = np.zeros(2 * space.n_layers, dtype=np.int64)
    for fraction in np.linspace(1.0, 0.0, 101):
        genome = np.array(
            [
                int(np.argmin([abs(v - fraction * grid[-1]) for v in grid]))
                for layer in space.layers
                for grid in (layer.heads, layer.ffn)
            ],
            dtype=np.int64,
        )
        if problem.feasible(genome)[0]:
            return genome
    return best
