"""Imports every command module so their ``@app.command`` decorators run."""

from prunesearch.cli import demo, export, oracle, report, search, verify  # noqa: F401
