"""Týr-the-Pruner-style supernet allocation: per-layer candidates at the space's levels, each
scored with the other layers at the current (expected) allocation so a choice sees the
upstream error it will really get (expectation error accumulation), then a greedy allocation
under the constraints; coarse grid first, then the levels around the current best."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, PositiveInt

from prunesearch.search._operators import filled, uniform_start
from prunesearch.search._problem import SearchProblem
from prunesearch.search._registry import register_algorithm


class SupernetOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rounds: PositiveInt = 3  # round 0: every other level; later rounds: current level +- 1
    tokens: PositiveInt = 8192
    accumulate: bool = True  # False scores each choice with the others dense (ablation)


def _candidates(genome: np.ndarray, upper: np.ndarray, coarse: bool) -> list[np.ndarray]:
    out = []
    for g, u in zip(genome, upper):
        levels = set(range(0, int(u) + 1, 2)) | {int(u)} if coarse else {g - 1, g + 1}
        out.append(np.array(sorted(v for v in levels | {int(g)} if 0 <= v <= u), dtype=np.int64))
    return out


def allocate(problem: SearchProblem, candidates: list[np.ndarray], delta_loss: list[np.ndarray]) -> np.ndarray:
    """From every entry at its highest candidate, lower the entry whose next candidate costs the
    least loss per unit of constraint excess saved (a latency budget alone: per millisecond) until
    every constraint holds. Excess saved is the prediction's difference between genomes differing
    in that entry only."""
    index = np.array([len(c) - 1 for c in candidates])
    genome = np.array([c[-1] for c in candidates], dtype=np.int64)
    while not problem.feasible(genome)[0]:
        best, best_ratio = None, np.inf
        base = problem.excess(genome)[0]
        for k, c in enumerate(candidates):
            if index[k] == 0:
                continue
            lower = genome.copy()
            lower[k] = c[index[k] - 1]
            saved = base - problem.excess(lower)[0]
            extra = delta_loss[k][index[k] - 1] - delta_loss[k][index[k]]
            ratio = extra / max(saved, 1e-9)
            if ratio < best_ratio:
                best, best_ratio = k, ratio
        if best is None:
            break
        index[best] -= 1
        genome[best] = candidates[best][index[best]]
    return filled(problem, genome)


@register_algorithm("supernet", SupernetOptions)
def supernet(problem: SearchProblem, options: SupernetOptions, rng: np.random.Generator) -> np.ndarray:
    del rng  # deterministic: same problem, same allocation
    upper = problem.space.genome_upper
    current = uniform_start(problem)
    for r in range(options.rounds):
        context = current if options.accumulate else upper.astype(np.int64)
        candidates = _candidates(current, upper, coarse=r == 0)
        rows, owners = [context], []
        for k, levels in enumerate(candidates):
            for v in levels:
                g = context.copy()
                g[k] = v
                rows.append(g)
                owners.append(k)
        # one batch, so an executor can spread it; the store dedups repeated genomes
        losses = problem.evaluate(np.array(rows), tokens=options.tokens, algorithm="supernet", stage=f"round{r}")
        base, scored = losses[0], losses[1:]
        owners = np.array(owners)
        delta = [scored[owners == k] - base for k in range(len(candidates))]
        current = allocate(problem, candidates, delta)
        problem.evaluate(current, tokens=options.tokens, algorithm="supernet", stage=f"allocation{r}")
    return current
