"""Command-line interface."""

from prunesearch.cli.app import app
from prunesearch.cli.main import main

__all__ = ["app", "main"]
