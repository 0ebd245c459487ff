"""A DuckDB file: dlt's duckdb destination on our own connection, a lock file beside it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dlt

from batchlens.errors import UsageError, require_database
from batchlens.output import check_writable_folder
from batchlens.storage.lock import DatabaseLock

if TYPE_CHECKING:
    from batchlens.storage.target import Target


class DuckDBFile:
    kind = "duckdb"
    dialect = "duckdb"

    def settings(self, db: str | None, default_db: Path | None) -> dict[str, Any]:
        from batchlens.config import database_path

        path = database_path(db) if db or default_db is None else default_db
        return {"label": str(path), "db": path}

    def state_dir(self, target: Target) -> Path:
        """Beside the file, so the incremental state belongs to the file."""
        assert target.db is not None
        return target.db.with_name(target.db.name + ".batchlens")

    def check(self, target: Target) -> None:
        assert target.db is not None
        check_database_path(target.db)

    def lock(self, target: Target) -> contextlib.AbstractContextManager[Any]:
        return DatabaseLock(self.state_dir(target) / "lock")

    def connect(self, target: Target, read_only: bool) -> Any:
        """Read-only: after an extraction writing the file, `target.wait_seconds` at most."""
        from batchlens.storage.duckdb_connection import connect

        assert target.db is not None
        if read_only:
            from batchlens.storage.readers import open_duckdb_reader

            return open_duckdb_reader(target, target.wait_seconds)
        return connect(target.db, read_only=False)

    def dlt_destination(self, target: Target, connection: Any) -> Any:
        from batchlens.storage.duckdb_connection import dlt_credentials

        return dlt.destinations.duckdb(dlt_credentials(connection))


# Every DuckDB database file starts with a 8-byte checksum, then these 4 bytes.
MAGIC, MAGIC_AT = b"DUCK", 8


def check_database_path(db: Path) -> None:
    """Refuses, before anything is created beside it, a DuckDB path a run cannot write:
    a folder that is missing or takes no new file (read-only, immutable, `/proc`), a path
    that is a folder, an existing file that is not a DuckDB database."""
    folder = db.parent
    if not folder.is_dir():
        raise UsageError(f"the folder of the database does not exist: {folder}")
    if db.is_dir():
        raise UsageError(f"the database path is a folder, not a DuckDB file: {db}")
    check_writable_folder(folder, "database")
    if db.exists():
        if not os.access(db, os.R_OK | os.W_OK):
            raise UsageError(f"the database file is not writable: {db}")
        check_database_file(db)


def check_database_file(db: Path) -> None:
    """Refuses a DuckDB path a reader cannot open: missing, a folder, not a DuckDB file."""
    if db.is_dir():
        raise UsageError(f"the database path is a folder, not a DuckDB file: {db}")
    require_database(db)
    try:
        with open(db, "rb") as file:
            head = file.read(MAGIC_AT + len(MAGIC))
    except OSError as exc:
        raise UsageError(f"cannot open the database {db}: {exc.strerror or exc}") from None
    if head[MAGIC_AT:] != MAGIC:
        raise UsageError(f"cannot open the database {db}: the file is not a DuckDB database")
