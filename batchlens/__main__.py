"""`python -m batchlens` runs the CLI, as the `batchlens` command does."""

from batchlens.start import entry

entry()
