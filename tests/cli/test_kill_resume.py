"""A real MiniLM search through the CLI, killed with SIGKILL mid-search and resumed: on SQLite, on a
PostgreSQL server shared by two search processes, and with the Ray executor. Every finished
evaluation is there once afterwards, and nothing is computed twice.

The table (``remote_table``) is one WE WROTE for a device that is not this machine, so no timing runs:
these tests are about the store, not about latency."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from sqlalchemy.exc import SQLAlchemyError

SPEC = """name: {name}
model: minilm
calibration: {{tokens: 1024}}
device: {{table: {table}, threads: 1}}
target: {{speedup: 2}}
algorithm: evolution
options: {{generations: {generations}, offspring: 6, selection: [[512, 2], [1024, 1]]}}
budget: {{evaluations: {evaluations}}}
seed: 0
{extra}
"""


def _search(spec: Path, runs: Path, *, resume: bool = False) -> subprocess.Popen:
    args = [sys.executable, "-c", "from prunesearch.cli import main; main()", "search", str(spec), "--runs", str(runs)]
    return subprocess.Popen([*args, *(["--resume"] if resume else [])], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen) -> None:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-3000:]


def _trials(url: str, name: str, state=optuna.trial.TrialState.COMPLETE) -> list:
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []  # opening it would create the file under the search
    try:
        study = optuna.load_study(storage=url, study_name=name)
    except (KeyError, SQLAlchemyError):  # no study yet, or not even its file
        return []
    return [t for t in study.get_trials(deepcopy=False) if t.state == state]


def _keys(trials) -> list[tuple]:
    return [(tuple(t.user_attrs["genome"]), t.user_attrs["tokens"]) for t in trials]


def _wait_for(condition, *, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the search ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "timed out waiting for the search to store evaluations"
        time.sleep(0.3)


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _check_complete(url: str, name: str, before: list[tuple]) -> None:
    """Every evaluation finished before the kill is there, each config once, and a last resume computes nothing."""
    keys = _keys(_trials(url, name))
    assert len(keys) == len(set(keys)), "an evaluation was stored twice"
    assert set(before) <= set(keys), "an evaluation finished before the kill was lost"
    assert len(keys) > len(before)


def _spec(tmp_path: Path, table: Path, name: str, extra: str = "", *, generations: int = 6) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        SPEC.format(name=name, table=table, extra=extra, generations=generations, evaluations=6 * generations)
    )
    return path


def _killed_and_resumed(spec: Path, runs: Path, name: str) -> str:
    """Run ``spec``, SIGKILL it once 8 evaluations are stored, resume it to the end; the study's URL."""
    url = f"sqlite:///{(runs / name / 'study.db').resolve()}"
    proc = _search(spec, runs)
    _wait_for(lambda: len(_trials(url, name)) >= 8, proc=proc)
    _kill(proc)
    before = _keys(_trials(url, name))
    _finish(_search(spec, runs, resume=True))
    _check_complete(url, name, before)
    return url


def test_sigkill_and_resume_on_sqlite(tmp_path, remote_table):
    spec, runs = _spec(tmp_path, remote_table, "killed"), tmp_path / "runs"
    url = _killed_and_resumed(spec, runs, "killed")
    done = _keys(_trials(url, "killed"))
    _finish(_search(spec, runs, resume=True))  # a finished run resumed: everything answered from the store
    assert _keys(_trials(url, "killed")) == done


def _owned_by(owner: str, proc: subprocess.Popen) -> bool:
    return owner.count(":") == 2 and owner.split(":")[1] == str(proc.pid)


def test_two_processes_share_one_postgresql_study_and_survive_a_sigkill(tmp_path, remote_table, postgres):
    url = postgres.new_database("shared")
    spec = _spec(tmp_path, remote_table, "shared", extra=f"storage: {url}", generations=20)
    first = _search(spec, tmp_path / "first")
    _wait_for(lambda: len(_trials(url, "shared")) >= 4, proc=first)
    # the first is held while the second joins, else it may finish the study before the second claims a
    # config; its own claims stay in the study, orphaned once it is killed
    os.kill(first.pid, signal.SIGSTOP)
    second = _search(spec, tmp_path / "second", resume=True)  # joins the study the first one started

    def second_claimed() -> bool:  # a claim is a running trial for the whole evaluation: the poll sees it
        trials = _trials(url, "shared", optuna.trial.TrialState.RUNNING) + _trials(url, "shared")
        return any(_owned_by(t.user_attrs.get("owner", ""), second) for t in trials)

    _wait_for(second_claimed, proc=second)
    _kill(first)
    before = _keys(_trials(url, "shared"))
    _finish(second)  # takes over what the killed one had claimed
    _check_complete(url, "shared", before)
    done = _trials(url, "shared")
    for proc in (first, second):  # both computed part of the study
        assert any(_owned_by(t.user_attrs["owner"], proc) for t in done)
    _finish(_search(spec, tmp_path / "third", resume=True))
    assert sorted(_keys(_trials(url, "shared"))) == sorted(_keys(done))  # nothing was missing: nothing recomputed


def test_sigkill_and_resume_with_the_ray_executor(tmp_path, remote_table, ray_head):
    spec = _spec(tmp_path, remote_table, "ray", extra=f"executor: {{kind: ray, address: '{ray_head.address}'}}")
    _killed_and_resumed(spec, tmp_path / "runs", "ray")


def test_resume_of_a_search_never_started_starts_it(tmp_path, remote_table):
    """`prunesearch demo` resumes its run: on a fresh clone there is no runs folder yet, let alone a study."""
    spec, runs = _spec(tmp_path, remote_table, "fresh", generations=1), tmp_path / "no" / "runs"
    _finish(_search(spec, runs, resume=True))
    assert len(_trials(f"sqlite:///{(runs / 'fresh' / 'study.db').resolve()}", "fresh")) == 6
