"""Tests of the command line, through its real entry point."""

from __future__ import annotations

import sys

import pytest


def run_cli(args, capsys, monkeypatch) -> tuple[int, str]:
    """``prunesearch ARGS`` in this process: its exit code and what it wrote to stderr."""
    from prunesearch.cli import main

    monkeypatch.setattr(sys, "argv", ["prunesearch", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err
