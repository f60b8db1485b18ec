import io

from rich.console import Console

from prunesearch import _reporter
from prunesearch._reporter import Reporter


def _log() -> tuple[Reporter, io.StringIO]:
    out = io.StringIO()
    return Reporter(Console(file=out, force_terminal=False, width=200)), out


def test_a_bar_on_a_log_says_when_it_starts_and_where_it_ended():
    reporter, out = _log()
    with reporter.bar("profile", "timing blocks", total=40) as update:
        update(completed=10)  # within LOG_EVERY_S of the start: no line
        update(completed=40, description="timed 40 blocks")
    lines = out.getvalue().splitlines()
    assert lines[0] == "profile timing blocks"
    assert lines[1].startswith("profile timed 40 blocks: 40/40 (")
    assert len(lines) == 2


def test_a_bar_on_a_log_prints_its_progress_every_interval(monkeypatch):
    monkeypatch.setattr(_reporter, "LOG_EVERY_S", 0.0)
    reporter, out = _log()
    with reporter.bar("search", "evaluating") as update:
        update(completed=3)
        update(completed=5)
    assert [line.split(" (")[0] for line in out.getvalue().splitlines()] == [
        "search evaluating",
        "search evaluating: 3",
        "search evaluating: 5",
        "search evaluating: 5",
    ]


def test_a_quiet_reporter_prints_nothing(capsys):
    with Reporter().bar("search", "evaluating", total=2) as update:
        update(completed=2)
    assert capsys.readouterr() == ("", "")
