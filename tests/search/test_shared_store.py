"""Several processes on one study: each config is computed by one of them, and a claim whose owner
stopped is taken over. (Real processes and PostgreSQL: tests/cli/test_kill_resume.py.)"""

import numpy as np
import optuna
import pytest

import prunesearch.search._store as store_module
from prunesearch.search._store import Evaluation, RunStore, key_of

ATTRS = {"config": {"layers": [{"heads": 1, "ffn": 16}]}, "algorithm": "test", "stage": "test"}


def _key(i: int):
    return (i, i + 1), 64


def _open(url: str) -> RunStore:
    return RunStore.open(url, "shared", resume=True, objectives=("loss",))


def _complete(url: str) -> list:
    study = optuna.load_study(storage=url, study_name="shared")
    return [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]


def test_two_stores_split_the_work_and_store_each_config_once(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    a, b = _open(url), _open(url)
    mine_a, others_a = a.claim([_key(i) for i in range(3)])
    mine_b, others_b = b.claim([_key(i) for i in range(5)])
    assert mine_a == [_key(i) for i in range(3)] and others_a == []
    assert mine_b == [_key(3), _key(4)] and others_b == [_key(i) for i in range(3)]  # a has those
    for key in mine_a:
        a.add(key, Evaluation(loss=float(key[0][0])), **ATTRS)
    for key in mine_b:
        b.add(key, Evaluation(loss=float(key[0][0])), **ATTRS)
    assert b.wait(others_b) == [] and b.get(*_key(1)).loss == 1.0  # a's results, not recomputed
    keys = [(tuple(t.user_attrs["genome"]), t.user_attrs["tokens"]) for t in _complete(url)]
    assert sorted(keys) == sorted(_key(i) for i in range(5))
    a.close(), b.close()


def test_a_claim_whose_owner_stopped_is_taken_over(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 's.db'}"
    gone = _open(url)
    assert gone.claim([_key(0), _key(1)])[0] == [_key(0), _key(1)]
    gone._heartbeat.stopped.set()  # it stops beating, as a killed process on another machine would
    gone.study.set_user_attr(f"alive:{gone.owner}", 0.0)
    monkeypatch.setattr(store_module, "_gone_here", lambda owner: False)  # only the heartbeat can tell
    taker = _open(url)
    assert taker.wait([_key(0)]) == [_key(0)]  # orphaned: not waited for forever
    mine, others = taker.claim([_key(0), _key(1)])
    assert mine == [_key(0), _key(1)] and others == []
    for key in mine:
        taker.add(key, Evaluation(loss=1.0), **ATTRS)
    assert len(_complete(url)) == 2
    states = {t.state for t in optuna.load_study(storage=url, study_name="shared").get_trials()}
    assert optuna.trial.TrialState.RUNNING not in states  # the orphaned claims were failed, not left running
    taker.close()


def test_a_live_owners_claim_is_waited_for(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 's.db'}"
    owner, waiter = _open(url), _open(url)
    owner.claim([_key(0)])
    polls = []

    def sleep(seconds):  # the owner finishes while the waiter polls
        polls.append(seconds)
        owner.add(_key(0), Evaluation(loss=3.0), **ATTRS)

    monkeypatch.setattr(store_module.time, "sleep", sleep)
    assert waiter.claim([_key(0)]) == ([], [_key(0)])
    assert waiter.wait([_key(0)]) == [] and waiter.get(*_key(0)).loss == 3.0 and len(polls) == 1
    owner.close(), waiter.close()


def test_close_hands_back_unfinished_claims(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = _open(url)
    first.claim([_key(0)])
    first.close()
    second = _open(url)
    assert second.claim([_key(0)]) == ([_key(0)], [])
    second.close()


def test_two_stores_claiming_one_config_at_once_never_both_compute_it(tmp_path):
    """b claims the config between a's ask and a's claim: b saw no rival and keeps it, a sees b's
    claim and yields (a lower trial number must not win: a's claim was not there when b looked)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    a, b = _open(url), _open(url)
    ask, seen = a.study.ask, []

    def ask_then_b_claims():
        trial = ask()
        seen.append(b.claim([_key(0)]))
        return trial

    a.study.ask = ask_then_b_claims
    mine_a, others_a = a.claim([_key(0)])
    assert seen == [([_key(0)], [])]  # b did not take a's fresh, ownerless trial for an orphaned claim
    assert mine_a == [] and others_a == [_key(0)]
    b.add(_key(0), Evaluation(loss=2.0), **ATTRS)
    assert a.wait(others_a) == [] and len(_complete(url)) == 1
    a.close(), b.close()


def test_a_config_another_store_finished_meanwhile_is_not_claimed(tmp_path):
    """b claims, computes and stores the config between a's first look and a's claim: a sees it stored."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    a, b = _open(url), _open(url)
    ask = a.study.ask

    def ask_while_b_finishes_it():
        assert b.claim([_key(0)]) == ([_key(0)], [])
        b.add(_key(0), Evaluation(loss=5.0), **ATTRS)
        return ask()

    a.study.ask = ask_while_b_finishes_it
    assert a.claim([_key(0)]) == ([], []) and a.get(*_key(0)).loss == 5.0
    assert len(_complete(url)) == 1
    a.close(), b.close()


def test_two_stores_that_both_yield_claim_again(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    a, b = _open(url), _open(url)
    b_trial = b.study.ask()  # b has written its claim but not yet read a's
    b_trial.set_user_attr("owner", b.owner)
    b_trial.set_user_attr("claim", "64:0,1")
    assert a.claim([_key(0)]) == ([], [_key(0)])  # a sees b's claim: yields
    b._fail(b_trial.number)  # b saw a's claim too: yields
    assert a.wait([_key(0)]) == [_key(0)]  # unclaimed now: a claims it again
    assert a.claim([_key(0)]) == ([_key(0)], [])
    a.close(), b.close()


def test_an_ownerless_running_trial_is_failed_only_once_it_is_old(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = _open(url)
    stray = store.study.ask()  # a process killed between asking and naming itself
    store.claim([_key(0)])
    assert store.study.get_trials()[stray.number].state == optuna.trial.TrialState.RUNNING
    monkeypatch.setattr(store_module, "ORPHANED_AFTER_S", 0.0)
    store.claim([_key(1)])
    assert store.study.get_trials()[stray.number].state == optuna.trial.TrialState.FAIL
    store.close()


def test_a_search_waits_for_claims_still_running_after_another_was_orphaned(tmp_path, monkeypatch):
    """Of two configs another process claimed, one is orphaned while the other still runs: the search
    computes the orphaned one and still waits for the other (it used to end there, quietly)."""
    from tests.search.toy import SPACE, toy_problem

    url = f"sqlite:///{tmp_path / 's.db'}"
    problem = toy_problem(url, name="shared", resume=True)
    other = RunStore.open(url, "shared", resume=True, objectives=problem.objectives)
    genomes = np.array([SPACE.genome_upper, SPACE.genome_upper - 1])
    keys = [key_of(g, 64) for g in genomes]
    assert other.claim(keys) == (keys, [])
    polls = []

    def sleep(seconds):  # first poll: the other hands back one claim; second: it stores the other
        polls.append(seconds)
        if len(polls) == 1:
            other.release([keys[0]])
        elif len(polls) == 2:
            other.add(keys[1], Evaluation(loss=42.0, metrics={"latency_ms": 5.0}), **ATTRS)

    monkeypatch.setattr(store_module.time, "sleep", sleep)
    losses = problem.evaluate(genomes, tokens=64, algorithm="test", stage="test")
    assert losses[1] == 42.0 and losses[0] == problem.store.get(genomes[0], 64).loss
    assert len(_complete(url)) == 2
    other.close()


def test_a_store_opened_by_two_processes_at_once_is_opened_again_by_the_one_that_lost(monkeypatch, tmp_path):
    """Each process opening a new store writes its schema: the loser of that race fails on a unique key (SQLite:
    alembic_version.version_num) and opens the store again, finding the schema made."""
    from sqlalchemy.exc import IntegrityError

    opened, real = [], optuna.storages.RDBStorage

    def racing(url, **kwargs):
        opened.append(url)
        if len(opened) <= 2:
            raise IntegrityError("INSERT INTO alembic_version", {}, Exception("UNIQUE constraint failed"))
        return real(url, **kwargs)

    monkeypatch.setattr(store_module.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert isinstance(store_module.rdb(url), real) and len(opened) == 3
    opened.clear()
    with pytest.raises(IntegrityError):  # a store that keeps failing: the last error is the user's to see
        store_module._opened(url, attempts=2)
