"""Several processes on one study: each config is computed by one of them, and a claim whose owner
stopped is taken over. (Real processes and PostgreSQL: tests/cli/test_kill_resume.py.)"""

import optuna

import prunesearch.search.store as store_module
from prunesearch.search.store import Evaluation, RunStore

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
