"""A disk or database failing midway through a search: one line naming it and the fix, exit 2, and a
`--resume` that finishes without computing again what was stored."""

from __future__ import annotations

import errno

import optuna
import pytest

from tests.cli import run_cli

SPEC = """name: midway
model: minilm
calibration: {{tokens: 1024}}
device: {{table: {table}, threads: 1}}
target: {{speedup: 2}}
algorithm: evolution
options: {{generations: 3, offspring: 4, selection: [[1024, 1]]}}
budget: {{evaluations: 12}}
"""


def _complete(tmp_path) -> int:
    study = optuna.load_study(storage=f"sqlite:///{tmp_path / 'runs' / 'midway' / 'study.db'}", study_name="midway")
    return sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials(deepcopy=False))


@pytest.fixture
def spec(tmp_path, remote_table):
    path = tmp_path / "midway.yaml"
    path.write_text(SPEC.format(table=remote_table))
    return path


def _counting_fitness(monkeypatch) -> list:
    """Counts fitness calls, so a resume can be seen to compute only what was not stored."""
    from prunesearch.search import _fitness as fitness

    calls = []
    real = fitness.DistillationFitness.__call__

    def counted(self, config, tokens):
        calls.append(tokens)
        return real(self, config, tokens)

    monkeypatch.setattr(fitness.DistillationFitness, "__call__", counted)
    return calls


def test_a_full_disk_while_writing_the_report_keeps_the_run_resumable(spec, tmp_path, capsys, monkeypatch):
    import prunesearch.report as report

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "runs" / "midway" / "index.html"))

    monkeypatch.setattr(report, "report_run", full)
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(["search", spec, "--runs", tmp_path / "runs"], capsys, monkeypatch)
    (line,) = [l for l in err.splitlines() if l.startswith("error:")]
    assert code == 2 and "No space left on device" in line and "--resume" in line and "Traceback" not in err
    stored = _complete(tmp_path)
    assert stored > 0
    monkeypatch.undo()
    calls = _counting_fitness(monkeypatch)
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(["search", spec, "--runs", tmp_path / "runs", "--resume"], capsys, monkeypatch)
    assert code == 0 and calls == [] and _complete(tmp_path) == stored  # all answered from the store
    assert (tmp_path / "runs" / "midway" / "index.html").is_file()


def test_the_store_failing_midway_loses_no_evaluation(spec, tmp_path, capsys, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from prunesearch.search import RunStore

    real_add, added = RunStore.add, []

    def add_then_fail(self, *args, **kwargs):
        if len(added) == 5:
            raise OperationalError("INSERT INTO trials", {}, Exception("database or disk is full"))
        added.append(args[0])
        return real_add(self, *args, **kwargs)

    monkeypatch.setattr(RunStore, "add", add_then_fail)
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(["search", spec, "--runs", tmp_path / "runs"], capsys, monkeypatch)
    (line,) = [l for l in err.splitlines() if l.startswith("error:")]
    assert code == 2 and "database or disk is full" in line and "--resume" in line and "Traceback" not in err
    assert _complete(tmp_path) == 5
    monkeypatch.undo()
    calls = _counting_fitness(monkeypatch)
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(["search", spec, "--runs", tmp_path / "runs", "--resume"], capsys, monkeypatch)
    assert code == 0, err
    total = _complete(tmp_path)
    assert len(calls) == total - 5  # the five stored before the failure were not computed again
