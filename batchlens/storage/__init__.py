"""Where the history lives: the only package that knows a DuckDB file from PostgreSQL and
DuckLake. `target.Target` is what the rest of batchlens holds; each backend module answers
for its kind (see `backend.Backend`)."""

# The --destination words, here rather than beside the backends so that the CLI's parser
# (`batchlens --help`) can offer them without importing dlt.
KINDS = ("duckdb", "postgres", "ducklake")
