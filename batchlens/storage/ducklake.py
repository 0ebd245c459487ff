"""A DuckLake: its catalog in PostgreSQL (locked like one), its data files in a folder."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dlt

from batchlens.errors import UsageError
from batchlens.storage import server
from batchlens.storage.postgres import AdvisoryLock

if TYPE_CHECKING:
    from batchlens.storage.target import Target

CATALOG_KEY = "destination.ducklake.credentials.catalog"
STORAGE_KEY = "destination.ducklake.credentials.storage"


class DuckLake:
    kind = "ducklake"
    dialect = "duckdb"

    def settings(self, db: str | None, default_db: Path | None) -> dict[str, Any]:
        # dlt's DuckLake takes any connection string for its catalog: no password required
        catalog = server.connection_url(CATALOG_KEY, self.kind, server.CatalogCredentials())
        storage = dlt.config.get(STORAGE_KEY)
        if not storage:
            raise UsageError(
                "the ducklake destination needs a data path: storage under "
                "[destination.ducklake.credentials] (a folder or a bucket URL)"
            )
        return {
            "label": f"ducklake {server.label(catalog)} data={storage}",
            "url": catalog,
            "data_path": str(storage),
        }

    def state_dir(self, target: Target) -> Path:
        return server.state_dir(self.kind, target.label)

    def check(self, target: Target) -> None:
        """Nothing to check before connecting: the settings were resolved already."""

    def lock(self, target: Target) -> contextlib.AbstractContextManager[Any]:
        assert target.url is not None
        return AdvisoryLock(target.url, target.label)

    def connect(self, target: Target, read_only: bool) -> Any:
        from batchlens.storage import ducklake_catalog as ducklake

        assert target.url is not None and target.data_path is not None
        return ducklake.connect(target.url, target.data_path, read_only=read_only)

    def dlt_destination(self, target: Target, connection: Any) -> Any:
        from batchlens.storage import ducklake_catalog as ducklake

        assert target.url is not None and target.data_path is not None
        return dlt.destinations.ducklake(
            credentials=ducklake.dlt_credentials(target.url, target.data_path)
        )
