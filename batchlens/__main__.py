"""`python -m batchlens` runs the CLI, as the `batchlens` command does."""

from .start import entry

entry()
