"""Opening a batchlens database: always attached under one catalog name.

DuckDB names a file's catalog after the file. The default `batchlens.duckdb` has no
clash, but a file called after the dataset (`openai_batches.duckdb`, the default of older
versions) holds a catalog `openai_batches` with a schema `openai_batches`, and every
two-part name such as `openai_batches.batches` is ambiguous ("Ambiguous reference to
catalog or schema"). batchlens therefore attaches the file as `batchlens_db` and works
inside it, whatever the file is called, and builds the views with unqualified references,
which DuckDB binds in the view's own schema: the views work under any catalog name."""

from __future__ import annotations

from pathlib import Path

import duckdb

CATALOG = "batchlens_db"


def connect(db: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the file attached as `batchlens_db` and in use."""
    connection = duckdb.connect()
    try:
        literal = str(db).replace("'", "''")
        mode = " (read_only)" if read_only else ""
        connection.execute(f"attach '{literal}' as {CATALOG}{mode}")
        connection.execute(f"use {CATALOG}")
    except BaseException:
        connection.close()
        raise
    return connection


def dlt_credentials(connection: duckdb.DuckDBPyConnection) -> object:
    """dlt credentials on `connection`; dlt's cursors do not inherit `use`, so set it each."""
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    credentials = DuckDbCredentials(connection)
    credentials.local_config = {"schema": CATALOG}  # what `use` sets, per cursor
    return credentials
