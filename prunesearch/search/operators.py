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


class Fill:
    """Raise levels one step at a time while the predicted latency stays within the budget, so
    a config spends the slack a coarse level grid or a repair left unused. Passes visit the
    entries in index order (deterministic, spreads evenly over layers) or, given a generator,
    in a random order per pass."""

    def __init__(self, problem: SearchProblem) -> None:
        self.problem = problem
        self.upper = problem.space.genome_upper

    def do(self, genome: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        genome = np.asarray(genome, dtype=np.int64).copy()
        raised = True
        while raised:
            raised = False
            order = np.arange(len(genome)) if rng is None else rng.permutation(len(genome))
            for k in order:
                if genome[k] >= self.upper[k]:
                    continue
                genome[k] += 1
                if self.problem.feasible(genome)[0]:
                    raised = True
                else:
                    genome[k] -= 1
        return genome


class LevelSwitchMutation:
    """DarwinLM's level switch, min(U{1..3}, U{1..3}) times: either raise one block's level and
    lower another block of the same kind (attention with attention, FFN with FFN; a switch
    that breaks the latency budget is redrawn), or lower one block and let ``Fill`` spend the
    freed latency on random blocks of either kind. Same-kind switches alone cannot move latency
    between attention and FFN when every layer costs the same; the second move can. Offspring
    are filled up to the budget."""

    def __init__(self, problem: SearchProblem, *, max_tries: int = 64) -> None:
        self.problem = problem
        self.upper = problem.space.genome_upper
        self.max_tries = max_tries
        self.fill = Fill(problem)

    def do(self, genome: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        child = np.asarray(genome, dtype=np.int64).copy()
        n_switches = min(rng.integers(1, 4), rng.integers(1, 4))
        for _ in range(n_switches):
            if rng.random() < 0.5:
                lowered = np.flatnonzero(child > 0)
                if len(lowered):
                    child[rng.choice(lowered)] -= 1
                continue
            for _ in range(self.max_tries):
                trial = self._switch(child, rng)
                if trial is not None and self.problem.feasible(trial)[0]:
                    child = trial
                    break
        return self.fill.do(child, rng)

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
    """Uniform random levels, repaired into the budget, then filled up to it."""

    def __init__(self, problem: SearchProblem) -> None:
        self.problem = problem
        self.repair = Repair(problem)
        self.fill = Fill(problem)

    def do(self, rng: np.random.Generator) -> np.ndarray:
        upper = self.problem.space.genome_upper
        return self.fill.do(self.repair.do(rng.integers(0, upper + 1), rng), rng)


def uniform_genome(problem: SearchProblem) -> np.ndarray:
    """The largest uniform config (same kept fraction in every block) within the budget."""
    space = problem.space
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
    return np.zeros(2 * space.n_layers, dtype=np.int64)  # feasible: SearchProblem checks it


def uniform_start(problem: SearchProblem) -> np.ndarray:
    """Where single-target searches start: the largest uniform config, filled evenly up to the budget."""
    return Fill(problem).do(uniform_genome(problem))
