"""batchlens: the complete history of your OpenAI Batch API jobs, in DuckDB."""

__version__ = "0.1.0"
