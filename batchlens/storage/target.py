"""Where the history lives: a DuckDB file, a shared PostgreSQL database, or a DuckLake.

Each target answers the same questions for a run: where dlt loads (one of dlt's own
destinations), how to reach the tables with SQL (a DB-API connection and its dialect),
which lock keeps a second writer out (a file lock beside a DuckDB file; a PostgreSQL
advisory lock on a server, where writers run on different machines), and where dlt's
working folder goes. The answers differ per backend, one module each under
`batchlens/backends/`. Connection settings come the dlt way (`[destination.postgres]` and
`[destination.ducklake]` credentials in `.dlt/secrets.toml` or env), never from flags.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dlt
from dlt.common.configuration.specs import ConnectionStringCredentials

from batchlens.errors import UsageError
from batchlens.storage import KINDS
from batchlens.storage.backend import Backend
from batchlens.storage.duckdb_file import DuckDBFile, check_database_file, check_database_path
from batchlens.storage.ducklake import DuckLake
from batchlens.storage.postgres import AdvisoryLock, Postgres

BACKENDS: dict[str, Backend] = {
    backend.kind: backend for backend in (DuckDBFile(), Postgres(), DuckLake())
}
assert tuple(BACKENDS) == KINDS, "batchlens.storage.KINDS lists the backends in this order"

__all__ = ["KINDS", "AdvisoryLock", "Target", "check_database_path", "resolve_target"]


@dataclass
class Target:
    kind: str
    label: str  # printed in summaries and messages: never holds a password
    db: Path | None = None  # the DuckDB file
    url: str | None = field(default=None, repr=False)  # PostgreSQL, or DuckLake's catalog
    data_path: str | None = None  # DuckLake's data files
    # a reader of a DuckDB file waits this long for an extraction writing it (readers.py)
    wait_seconds: float = field(default=0.0, compare=False)

    @property
    def backend(self) -> Backend:
        return BACKENDS[self.kind]

    @property
    def dialect(self) -> str:
        return self.backend.dialect

    def secrets(self) -> list[str]:
        """The password, as configured and as the URL spells it (the Redactor adds its
        percent-encoded and base64 forms to each)."""
        if not self.url:
            return []
        password = ConnectionStringCredentials(self.url).password
        if not password:
            return []
        password = str(password)
        in_url = urlsplit(self.url).netloc.rpartition("@")[0].partition(":")[2]
        spellings = {password, in_url}
        return sorted(spelling for spelling in spellings if spelling)

    def state_dir(self) -> Path:
        """dlt's working folder and the lock file: beside a DuckDB file; per server else."""
        return self.backend.state_dir(self)

    def require_database(self) -> None:
        """For a command that reads the history: a DuckDB file must be there already (a
        file, not a folder, and DuckDB's)."""
        if self.db is not None:
            check_database_file(self.db)

    def check(self) -> None:
        self.backend.check(self)

    def lock(self) -> contextlib.AbstractContextManager[Any]:
        return self.backend.lock(self)

    def connect(self, read_only: bool = False) -> Any:
        """A DB-API connection where schema `openai_batches` holds the tables and views.

        Read-only on a DuckDB file: waits up to `wait_seconds` for an extraction writing it.
        """
        return self.backend.connect(self, read_only)

    def dlt_destination(self, connection: Any) -> Any:
        return self.backend.dlt_destination(self, connection)


def resolve_target(
    destination: str | None, db: str | None, default_db: Path | None = None
) -> Target:
    """`--destination`, else `destination` under `[batchlens]` (env BATCHLENS__DESTINATION)."""
    kind = destination or dlt.config.get("batchlens.destination") or "duckdb"
    if kind not in BACKENDS:
        raise UsageError(f"--destination must be one of {', '.join(KINDS)}, got {kind!r}")
    if db and kind != "duckdb":
        raise UsageError(
            f"--db names a DuckDB file; the {kind} destination is configured the dlt way "
            f"([destination.{kind}.credentials] in .dlt/secrets.toml)"
        )
    return Target(kind, **BACKENDS[kind].settings(db, default_db))
