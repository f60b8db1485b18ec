"""`prunesearch dashboard RUN`, headless: the real server on a loopback port, its API fetched, then stopped."""

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from prunesearch.search._store import Evaluation, RunStore, key_of
from tests.services import free_port

pytest.importorskip(
    "optuna_dashboard", reason="the dashboard extra is not installed (pip install 'prunesearch[dashboard]')"
)


def _run_folder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "spec.yaml").write_text("name: watched\nmodel: minilm\ntarget: {speedup: 2}\n")
    store = RunStore.open(f"sqlite:///{folder / 'study.db'}", "watched", resume=False, attrs={"model": "minilm"})
    config = {"layers": [{"heads": 8, "ffn": 1024}] * 6}
    store.add(
        key_of([5, 7] * 6, 4096),
        Evaluation(loss=0.031, metrics={"latency_ms": 7.9, "speedup": 2.05}),
        config=config,
        algorithm="evolution",
        stage="generation 1",
    )
    store.close()
    return folder


def _get(url: str, *, deadline: float):
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_the_dashboard_serves_the_runs_trials_readably(tmp_path):
    port = free_port()
    cmd = [sys.executable, "-c", "from prunesearch.cli import main; main()", "dashboard", str(_run_folder(tmp_path))]
    server = subprocess.Popen([*cmd, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        studies = _get(f"http://127.0.0.1:{port}/api/studies", deadline=deadline)["study_summaries"]
        assert [s["study_name"] for s in studies] == ["watched"]
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}", deadline=deadline)
        (trial,) = detail["trials"]
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        assert attrs["layers"].startswith("8/1024") and attrs["tokens"] == "4096"
        assert float(attrs["latency_ms"]) == 7.9 and float(attrs["loss"]) == 0.031
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_folder_without_a_run_is_refused_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "from prunesearch.cli import main; main()", "dashboard", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.strip().startswith("error:") and "not a run folder" in done.stderr
