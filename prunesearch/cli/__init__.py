"""Command-line interface."""

from prunesearch.cli.app import app, main

__all__ = ["app", "main"]
