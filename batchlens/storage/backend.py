"""Where the history can live, one module per backend behind one small interface.

`batchlens.destinations.Target` is what the rest of batchlens holds; it asks its backend
(`duckdb_file`, `postgres`, `ducklake`) for everything that differs between them, so no
method anywhere branches on the kind of destination.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from batchlens.storage.target import Target


class Backend(Protocol):
    kind: str  # the --destination word
    dialect: str  # the SQL the views are translated to (batchlens.dialects)

    def settings(self, db: str | None, default_db: Path | None) -> dict[str, Any]:
        """The Target's fields (label, db, url, data_path), from --db or dlt's config."""
        ...

    def state_dir(self, target: Target) -> Path:
        """dlt's working folder and the lock file."""
        ...

    def check(self, target: Target) -> None:
        """Refuses, before anything is created, what cannot work (UsageError)."""
        ...

    def lock(self, target: Target) -> contextlib.AbstractContextManager[Any]:
        """Keeps a second writer out for the whole run (LockedError)."""
        ...

    def connect(self, target: Target, read_only: bool) -> Any:
        """A DB-API connection where schema `openai_batches` holds the tables and views."""
        ...

    def dlt_destination(self, target: Target, connection: Any) -> Any:
        """One of dlt's destinations, loading where `connection` reads."""
        ...
