"""Where the history lives: the only package that knows a DuckDB file from PostgreSQL and
DuckLake. `target.Target` is what the rest of batchlens holds; each backend module answers
for its kind (see `backend.Backend`)."""

# The --destination words, here rather than beside the backends so that the CLI's parser
# (`batchlens --help`) can offer them without importing dlt.
KINDS = ("duckdb", "postgres", "ducklake")
# How long a reader (`report`, `sql`, `check`, ...) waits by default for an extraction that
# is writing a DuckDB file (`--wait`; readers.py): under the 10 s a monitoring plugin gets.
READ_WAIT_SECONDS = 8.0
