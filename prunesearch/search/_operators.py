"""Genome operators, pymoo-style: each is a small class whose ``do(problem, X, rng=...)`` maps a population
(an (n, genome length) array of levels; one genome is a population of one) to a new population of the same
size, with an explicit random generator. Subclasses implement ``_do`` on one genome at a time where genomes
do not interact. Every operator reads the constraints from the problem, so it keeps whatever budget the
problem holds now (the oracle's correction moves it during a search).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from prunesearch.search._problem import SearchProblem


class Operator:
    def do(self, problem: SearchProblem, X: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
        """A new population from ``X`` (n, genome length); ``X`` itself is left as it is."""
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        return np.array([self._do(problem, x.copy(), rng) for x in X], dtype=np.int64).reshape(X.shape)

    def _do(self, problem: SearchProblem, genome: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class Repair(Operator):
    """Lower random levels one step at a time until every constraint holds."""

    def _do(self, problem, genome, rng):
        genome = np.clip(genome, 0, problem.space.genome_upper)
        while not problem.feasible(genome)[0]:
            genome[rng.choice(np.flatnonzero(genome > 0))] -= 1
        return genome


class Fill(Operator):
    """Raise levels one step at a time while every constraint holds, so a config spends the slack a coarse level
    grid or a repair left unused. Passes visit the entries in index order (``order="index"``: deterministic,
    spreads evenly over layers) or in a new random order per pass."""

    def __init__(self, *, order: Literal["index", "random"] = "random") -> None:
        self.order = order

    def _do(self, problem, genome, rng):
        upper = problem.space.genome_upper
        raised = True
        while raised:
            raised = False
            for k in np.arange(len(genome)) if self.order == "index" else rng.permutation(len(genome)):
                if genome[k] >= upper[k]:
                    continue
                genome[k] += 1
                if problem.feasible(genome)[0]:
                    raised = True
                else:
                    genome[k] -= 1
        return genome


class LevelSwitchMutation(Operator):
    """DarwinLM's level switch, min(U{1..3}, U{1..3}) moves, then ``Fill`` up to the budget. A move is one of:
    lower one block and let ``Fill`` spend what it freed on blocks of either kind (same-kind switches alone
    cannot move latency between attention and FFN when every layer costs the same); remove a block whole, an
    attention block, an FFN block or a whole layer (depth: at small batch, a layer removed saves more than its
    width suggests, which the table prices); or raise one block's level and lower another block of the same
    kind (attention with attention, FFN with FFN; a switch that breaks the budget is redrawn).

    ``removal`` is the share of moves that remove; the rest are split evenly between lowering and switching.
    One uniform draw picks the move, so ``removal=0`` draws exactly the width-only moves the search made before
    depth moves existed."""

    #: the share of removals where none is asked for
    REMOVAL = 0.2

    def __init__(self, *, removal: float = REMOVAL, max_tries: int = 64) -> None:
        if not 0.0 <= removal <= 1.0:
            raise ValueError(f"removal is a share of the moves, in [0, 1]; got {removal}")
        width = (1.0 - removal) / 2
        self.moves = (width, removal, width)  # lower, remove, switch
        self.max_tries = max_tries
        self.fill = Fill()

    def _do(self, problem, genome, rng):
        for _ in range(min(rng.integers(1, 4), rng.integers(1, 4))):
            move = rng.choice(3, p=self.moves)
            if move == 0:
                lowered = np.flatnonzero(genome > 0)
                if len(lowered):
                    genome[rng.choice(lowered)] -= 1
            elif move == 1:
                genome = _remove(genome, rng)
            else:
                genome = self._switch(problem, genome, rng)
        return self.fill.do(problem, genome, rng=rng)[0]

    def _switch(self, problem, genome, rng):
        upper = problem.space.genome_upper
        for _ in range(self.max_tries):
            idx = np.arange(rng.integers(0, 2), len(genome), 2)  # attention entries, or FFN entries
            up, down = idx[genome[idx] < upper[idx]], idx[genome[idx] > 0]
            if len(up) == 0 or len(down) == 0:
                continue  # this kind has no room: draw the kind again
            i, j = rng.choice(up), rng.choice(down)
            if i == j:
                continue
            trial = genome.copy()
            trial[i] += 1
            trial[j] -= 1
            if problem.feasible(trial)[0]:
                return trial
        return genome


def _remove(genome: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One kept block removed (level 0), or, one time in three, a whole layer (both its blocks)."""
    kept = np.flatnonzero(genome > 0)
    if not len(kept):
        return genome
    k = rng.choice(kept)
    genome[k] = 0
    if rng.random() < 1 / 3:
        genome[k ^ 1] = 0  # the other block of the same layer (entries 2i, 2i + 1)
    return genome


class RandomSampling(Operator):
    """Each genome replaced by uniform random levels, repaired into the budget, then filled up to it."""

    def __init__(self) -> None:
        self.repair = Repair()
        self.fill = Fill()

    def _do(self, problem, genome, rng):
        drawn = rng.integers(0, problem.space.genome_upper + 1)
        return self.fill.do(problem, self.repair.do(problem, drawn, rng=rng), rng=rng)[0]


def filled(problem: SearchProblem, genome: np.ndarray) -> np.ndarray:
    """``genome`` filled up to the budget in index order: the same genome always fills the same way."""
    return Fill(order="index").do(problem, genome, rng=np.random.default_rng(0))[0]


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
    return filled(problem, uniform_genome(problem))


def scaled_into(problem: SearchProblem, genome: np.ndarray) -> np.ndarray:
    """``genome``'s allocation scaled until it just meets the problem's budget: every block's level moved the
    same share of the way towards 0 (to meet a tighter budget) or towards dense (to use a looser one), the
    largest such share that holds, then filled. How the front is swept from one searched config."""
    genome = np.asarray(genome, dtype=np.int64)
    upper = problem.space.genome_upper

    def at(t: float) -> np.ndarray:  # t in [-1, 1]: -1 removes everything, 0 is genome, 1 is dense
        target = np.where(t < 0, genome * (1 + t), genome + (upper - genome) * t)
        return np.clip(np.floor(target + 1e-9), 0, upper).astype(np.int64)

    low, high = -1.0, 1.0
    if problem.feasible(at(high))[0]:
        low = high
    for _ in range(30):
        if high - low < 1e-3:
            break
        mid = (low + high) / 2
        low, high = (mid, high) if problem.feasible(at(mid))[0] else (low, mid)
    return filled(problem, at(low))
