"""`prunesearch export --run RUN --recover-tokens N` changes the distillation budget only: the run's spec's other
recovery options (schedule, rows per step, the refit's budget) still take effect, as export.json records them."""

from __future__ import annotations

import json

from tests.cli import run_cli

SPEC = """name: recovery
model: minilm
calibration: {{tokens: 1024}}
device: {{table: {table}, threads: 1}}
target: {{speedup: 2}}
algorithm: evolution
options: {{generations: 2, offspring: 4, selection: [[1024, 1]]}}
budget: {{evaluations: 8}}
recovery:
  tokens: 100000
  lr: 1.0e-3
  batch: 2
  validation_tokens: 256
  reconstruction: {{tokens: 256, micro_batch: 4}}
"""


def test_recover_tokens_keeps_the_specs_other_recovery_options(tmp_path, remote_table, capsys, monkeypatch):
    spec = tmp_path / "recovery.yaml"
    spec.write_text(SPEC.format(table=remote_table))
    monkeypatch.chdir(tmp_path)
    assert run_cli(["search", spec, "--runs", tmp_path / "runs"], capsys, monkeypatch)[0] == 0
    out = tmp_path / "export"
    args = ["export", "--run", tmp_path / "runs" / "recovery", "--out", out, "--to", "hf", "--recover-tokens", 256]
    assert run_cli(args, capsys, monkeypatch)[0] == 0
    recovery = json.loads((out / "export.json").read_text())["recovery"]
    assert recovery["lr"] == 1.0e-3 and recovery["batch"] == 2 and recovery["validation_tokens"] == 256
    assert 256 <= recovery["tokens"] < 100_000  # the budget given, in whole steps
    assert 256 <= recovery["reconstruction"]["tokens"] < 512  # the spec's refit budget (in rows of 4), not 262k
    # what the defaults meant for an encoder, as they were run: whole steps per pass, activations kept
    assert recovery["micro_batch"] == 2 and recovery["checkpointing"] is False
    assert recovery["reconstruction"]["micro_batch"] == 4
