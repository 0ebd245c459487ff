"""A DuckDB file: dlt's duckdb destination on our own connection, a lock file beside it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dlt

from batchlens.errors import UsageError
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
        from batchlens.storage.duckdb_connection import connect

        assert target.db is not None
        return connect(target.db, read_only=read_only)

    def dlt_destination(self, target: Target, connection: Any) -> Any:
        from batchlens.storage.duckdb_connection import dlt_credentials

        return dlt.destinations.duckdb(dlt_credentials(connection))


def check_database_path(db: Path) -> None:
    """Refuse a DuckDB path we cannot write before anything is created."""
    folder = db.parent
    if not folder.is_dir():
        raise UsageError(f"the folder of the database does not exist: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"the folder of the database is not writable: {folder}")
    if db.exists() and not os.access(db, os.R_OK | os.W_OK):
        raise UsageError(f"the database file is not writable: {db}")
