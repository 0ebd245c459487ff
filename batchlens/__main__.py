"""`python -m batchlens` runs the CLI."""

from .cli import entry

entry()
