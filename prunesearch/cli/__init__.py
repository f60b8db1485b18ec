"""Command-line interface."""

from prunesearch.cli._app import app
from prunesearch.cli._main import main

__all__ = ["app", "main"]
