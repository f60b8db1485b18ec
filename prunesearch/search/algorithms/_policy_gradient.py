"""Policy gradient over unit masks (Bypass Back-propagation): a Bernoulli keep-probability
per unit group, sampled masks scored with forward passes only, REINFORCE with a moving-average
baseline and a penalty on the predicted excess over every constraint (latency, energy, parameters)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from prunesearch.search._operators import filled
from prunesearch.search._problem import SearchProblem
from prunesearch.search._registry import register_algorithm


class PolicyGradientOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    iterations: PositiveInt = 20
    samples: PositiveInt = 8  # masks per iteration
    learning_rate: PositiveFloat = 0.5
    baseline_decay: float = Field(0.8, ge=0.0, lt=1.0)
    penalty: PositiveFloat = 10.0  # lambda on the summed constraint excess, sum of max(0, value/limit - 1)
    tokens: PositiveInt = 8192


def _initial_logits(problem: SearchProblem) -> list[np.ndarray]:
    """One logit per unit group of each genome entry (entry k has genome_upper[k] groups).
    With ``problem.unit_importance``, every group of one block kind (attention, FFN) across all
    layers is ranked by its share of its layer's importance into keep-probabilities 0.2..0.8,
    so layers whose importance sits in few groups start with fewer kept; otherwise every unit
    starts at 0.5."""
    upper = [int(n) for n in problem.space.genome_upper]
    probs = [np.full(n, 0.5) for n in upper]
    if problem.unit_importance is not None:
        for parity in (0, 1):  # genome entries alternate attn, ffn
            entries = [k for k in range(len(upper)) if k % 2 == parity and upper[k] > 0]
            shares = np.concatenate([np.asarray(problem.unit_importance[k], dtype=float) for k in entries])
            if shares.size < 2:
                continue
            ranks = np.argsort(np.argsort(shares, kind="stable"), kind="stable") / (shares.size - 1)
            for k, part in zip(entries, np.split(0.2 + 0.6 * ranks, np.cumsum([upper[k] for k in entries])[:-1])):
                probs[k] = part
    return [np.log(p / (1 - p)) for p in probs]


def _probabilities(logits: list[np.ndarray]) -> list[np.ndarray]:
    return [1 / (1 + np.exp(-t)) for t in logits]


def _fit_to_budget(problem: SearchProblem, logits: list[np.ndarray]) -> list[np.ndarray]:
    """Shift every logit by one constant, the largest for which the expected mask (rounded kept
    counts) is within the budget: samples then straddle the budget instead of all missing it
    at a hard target (a 3x target with every unit at 0.5 would sample almost nothing feasible)."""

    def expected(shift: float) -> np.ndarray:
        return np.array([np.rint(p.sum()) for p in _probabilities([t + shift for t in logits])], dtype=np.int64)

    low, high = -12.0, 12.0
    if problem.feasible(expected(high))[0]:
        return logits
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if problem.feasible(expected(mid))[0] else (low, mid)
    return [t + low for t in logits]


def deterministic_genome(problem: SearchProblem, probs: list[np.ndarray]) -> np.ndarray:
    """Keep units with p > 0.5, then drop the least probable kept unit until the budget holds
    (unlike operators.Repair, which lowers random levels, this spends the cut where the policy
    is least sure); latency the last cut freed is spent by ``Fill``."""
    genome = np.array([int((p > 0.5).sum()) for p in probs], dtype=np.int64)
    kept = sorted(((p[i], k) for k, p in enumerate(probs) for i in np.argsort(-p)[: genome[k]]), reverse=True)
    while not problem.feasible(genome)[0]:
        _, k = kept.pop()
        genome[k] -= 1
    return filled(problem, genome)


@register_algorithm("policy_gradient", PolicyGradientOptions)
def policy_gradient(problem: SearchProblem, options: PolicyGradientOptions, rng: np.random.Generator) -> np.ndarray:
    logits = _fit_to_budget(problem, _initial_logits(problem))
    problem.policy_probabilities = None  # exposed for inspection (tests, reports)
    baseline = None
    for it in range(options.iterations):
        if problem.evaluations_left() <= options.samples:
            break  # keep one evaluation for the deterministic config the search ends with
        probs = _probabilities(logits)
        masks = [[rng.random(len(p)) < p for p in probs] for _ in range(options.samples)]
        # Level = number of kept groups: the database keeps the top units at each level, so a
        # mask's count, not which units, selects the level.
        genomes = np.array([[m.sum() for m in mask] for mask in masks], dtype=np.int64)
        losses = problem.evaluate(genomes, tokens=options.tokens, algorithm="policy_gradient", stage=f"iter{it}")
        rewards = -losses - options.penalty * problem.excess(genomes)
        baseline = (
            rewards.mean()
            if baseline is None
            else options.baseline_decay * baseline + (1 - options.baseline_decay) * rewards.mean()
        )
        advantage = rewards - baseline
        for k, p in enumerate(probs):
            # d log Bernoulli(m; sigmoid(t)) / dt = m - p
            grad = np.mean([a * (mask[k] - p) for a, mask in zip(advantage, masks)], axis=0)
            logits[k] = logits[k] + options.learning_rate * grad
    probs = _probabilities(logits)
    problem.policy_probabilities = probs
    final = deterministic_genome(problem, probs)
    problem.evaluate(final, tokens=options.tokens, algorithm="policy_gradient", stage="final")
    return final
