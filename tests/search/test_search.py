import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from prunesearch import pareto_mask
from prunesearch.errors import InfeasibleTargetError, PruneSearchError, SpecError
from prunesearch.search import (
    Fill,
    LevelSwitchMutation,
    hypervolume,
    load_trials,
    run_search,
    uniform_genome,
    uniform_start,
)

from .toy import SPACE, toy_loss, toy_problem


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def _is_filled(problem, genome) -> bool:
    """No single entry can go one level up within the budget."""
    for k in range(len(genome)):
        if genome[k] < SPACE.genome_upper[k]:
            up = genome.copy()
            up[k] += 1
            if problem.feasible(up)[0]:
                return False
    return True


def test_level_switch_mutation_keeps_budget_and_spends_the_slack(tmp_path):
    problem = toy_problem(_url(tmp_path))
    mutate = LevelSwitchMutation()
    rng = np.random.default_rng(0)
    parent = uniform_start(problem)
    assert problem.feasible(parent)[0] and _is_filled(problem, parent)
    children = {tuple(parent)}
    offspring = mutate.do(problem, np.repeat(parent[None], 200, axis=0), rng=rng)
    assert (parent == uniform_start(problem)).all()  # operators leave their input as it is
    for child in offspring:
        assert problem.feasible(child)[0] and _is_filled(problem, child)
        assert ((child >= 0) & (child <= SPACE.genome_upper)).all()
        children.add(tuple(child))
    assert len(children) > 20  # offspring explore, not fall back onto the parent


def _width_only_child(problem, parent, rng):
    """The mutation as it was before depth moves: lower a block (p 1/2) or switch levels within one kind."""
    child, upper = parent.copy(), problem.space.genome_upper
    for _ in range(min(rng.integers(1, 4), rng.integers(1, 4))):
        if rng.random() < 0.5:
            child[rng.choice(np.flatnonzero(child > 0))] -= 1
            continue
        for _ in range(64):
            idx = np.arange(rng.integers(0, 2), len(child), 2)
            up, down = idx[child[idx] < upper[idx]], idx[child[idx] > 0]
            if len(up) == 0 or len(down) == 0:
                continue
            i, j = rng.choice(up), rng.choice(down)
            trial = child.copy()
            trial[i], trial[j] = trial[i] + 1, trial[j] - 1
            if i != j and problem.feasible(trial)[0]:
                child = trial
                break
    return Fill().do(problem, child, rng=rng)[0]


def test_no_removals_draws_the_width_only_mutation_exactly(tmp_path):
    problem = toy_problem(_url(tmp_path))
    parent = uniform_start(problem)
    rng = np.random.default_rng(7)
    expected = np.array([_width_only_child(problem, parent, rng) for _ in range(50)])
    offspring = LevelSwitchMutation(removal=0.0).do(
        problem, np.repeat(parent[None], 50, 0), rng=np.random.default_rng(7)
    )
    assert (offspring == expected).all()
    with_removals = LevelSwitchMutation().do(problem, np.repeat(parent[None], 50, 0), rng=np.random.default_rng(7))
    assert (with_removals != expected).any()


def test_fill_raises_levels_up_to_the_budget_only(tmp_path):
    problem = toy_problem(_url(tmp_path), target_ms=7.6)  # uniform 2/2 is 7.0 ms; uniform 3/3 would be 10
    uniform = uniform_genome(problem)
    filled = Fill(order="index").do(problem, uniform, rng=np.random.default_rng(0))[0]
    assert (filled >= uniform).all() and filled.sum() > uniform.sum()
    assert problem.feasible(filled)[0] and _is_filled(problem, filled)
    assert (Fill().do(problem, filled, rng=np.random.default_rng(1)) == filled).all()  # a filled genome stays


def test_evolution_beats_uniform_and_is_reproducible(tmp_path):
    problem = toy_problem(_url(tmp_path), name="a")
    result = run_search(
        problem, "evolution", {"generations": 15, "offspring": 8, "selection": [[64, 2], [128, 1]]}, seed=3
    )
    uniform_loss = toy_loss(SPACE.from_genome(uniform_start(problem)), 0)
    assert result.best_metrics["latency_ms"] <= 7.0
    assert result.best_loss < 0.8 * uniform_loss
    # the important layers keep more than the unimportant one
    assert result.best.heads[0] >= result.best.heads[2] and result.best.ffn[0] >= result.best.ffn[2]
    again = run_search(
        toy_problem(_url(tmp_path), name="b"),
        "evolution",
        {"generations": 15, "offspring": 8, "selection": [[64, 2], [128, 1]]},
        seed=3,
    )
    assert again.best == result.best and again.evaluations == result.evaluations


def test_random_search_and_nsga_front(tmp_path):
    rnd = run_search(
        toy_problem(_url(tmp_path), name="r", max_evaluations=60), "random", {"samples": 60, "tokens": 128}, seed=0
    )
    assert rnd.best_metrics["latency_ms"] <= 7.0 and rnd.evaluations <= 60
    swept = load_trials(_url(tmp_path), "r").query("algorithm == 'front'")
    # the front around the best config is swept from near the dense model (16 ms) to past the target
    assert swept.latency_ms.min() < 7.0 / 1.1 and swept.latency_ms.max() > 7.0 / 0.8
    problem = toy_problem(_url(tmp_path), name="n", max_evaluations=96)
    result = run_search(problem, "nsga2", {"population": 16, "tokens": 128}, seed=0)
    assert result.best is not None and result.best_metrics["latency_ms"] <= 7.0
    df = load_trials(_url(tmp_path), "n")
    front = df[pareto_mask(df[["loss", "latency_ms"]].to_numpy())]
    assert len(front) >= 3
    assert pareto_mask(front[["loss", "latency_ms"]].to_numpy()).all()
    assert hypervolume(df[["loss", "latency_ms"]].to_numpy(), reference=(50.0, 20.0)) > 0


def test_infeasible_target_and_bad_options(tmp_path):
    with pytest.raises(InfeasibleTargetError, match="latency_ms <= 0.5 ms cannot be met.*1 ms; relax"):
        toy_problem(_url(tmp_path), target_ms=0.5)
    with pytest.raises(SpecError, match="options.generation"):
        run_search(toy_problem(_url(tmp_path), name="o"), "evolution", {"generation": 3}, seed=0)
    with pytest.raises(SpecError, match="choose from"):
        run_search(toy_problem(_url(tmp_path), name="p"), "annealing", {}, seed=0)
    with pytest.raises(PruneSearchError, match="--resume"):
        toy_problem(_url(tmp_path), name="o")  # exists already: refused without resume


SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
from tests.search import toy
from prunesearch.search import run_search
slow = toy.toy_loss
def fitness(config, tokens):
    time.sleep(float(sys.argv[3]))
    return slow(config, tokens)
problem = toy.toy_problem(sys.argv[1], name=sys.argv[2], resume=True)
problem.fitness = fitness
options = {{"generations": 10, "offspring": 8, "selection": [[64, 2], [128, 1]]}}
result = run_search(problem, "evolution", options, seed=7)
print(result.stored, result.evaluations)
"""


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    root = str(Path(__file__).resolve().parents[2])
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(root=root))
    url = _url(tmp_path)
    full = subprocess.run([sys.executable, str(script), url, "full", "0"], capture_output=True, text=True, check=True)
    proc = subprocess.Popen([sys.executable, str(script), url, "killed", "0.05"], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            if len(load_trials(url, "killed")) >= 15:
                break
        except PruneSearchError:
            pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(load_trials(url, "killed"))
    assert 0 < partial < int(full.stdout.split()[0])
    resumed = subprocess.run(
        [sys.executable, str(script), url, "killed", "0"], capture_output=True, text=True, check=True
    )
    assert resumed.stdout.split() == full.stdout.split()
    killed = load_trials(url, "killed")
    assert len(killed) == len(load_trials(url, "full"))
    assert not killed.assign(g=killed.genome.map(tuple)).duplicated(subset=["g", "tokens"]).any()


def test_a_parameter_limit_is_held_beside_the_latency_one(tmp_path):
    from prunesearch import Constraint

    limits = [Constraint(objective="latency_ms", limit=10.0), Constraint(objective="params", limit=900)]
    problem = toy_problem(_url(tmp_path), name="params", constraints=limits)
    result = run_search(
        problem, "evolution", {"generations": 10, "offspring": 8, "selection": [[64, 2], [128, 1]]}, seed=0
    )
    assert result.best_metrics["params"] <= 900 and result.best_metrics["latency_ms"] <= 10.0
    free = run_search(
        toy_problem(_url(tmp_path), name="latency", target_ms=10.0),
        "evolution",
        {"generations": 10, "offspring": 8, "selection": [[64, 2], [128, 1]]},
        seed=0,
    )
    assert free.best_metrics["params"] > 900  # the latency budget alone spends more parameters


def test_three_objective_nsga_front_is_non_dominated_in_all_three(tmp_path):
    objectives = ("loss", "latency_ms", "params")
    problem = toy_problem(_url(tmp_path), name="three", constraints=[], objectives=objectives, max_evaluations=80)
    run_search(problem, "nsga2", {"population": 16, "tokens": 128}, seed=0)
    df = load_trials(_url(tmp_path), "three")
    study = __import__("optuna").load_study(storage=_url(tmp_path), study_name="three")
    assert [d.name for d in study.directions] == ["MINIMIZE"] * 3 and len(study.trials[0].values) == 3
    front = df[pareto_mask(df[list(objectives)].to_numpy())]
    assert len(front) >= 3 and pareto_mask(front[list(objectives)].to_numpy()).all()
