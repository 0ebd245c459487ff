"""A PostgreSQL database: dlt's postgres destination, a session-level advisory lock."""

from __future__ import annotations

import contextlib
import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dlt
from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from batchlens.errors import LockedError
from batchlens.storage import server
from batchlens.storage.lock import WAIT_SECONDS

if TYPE_CHECKING:
    from batchlens.storage.target import Target

KEY = "destination.postgres.credentials"


class Postgres:
    """`password` is required, as dlt's own postgres destination has it."""

    kind = "postgres"
    dialect = "postgres"

    def settings(self, db: str | None, default_db: Path | None) -> dict[str, Any]:
        url = server.connection_url(KEY, self.kind, PostgresCredentials())
        return {"label": server.label(url), "url": url}

    def state_dir(self, target: Target) -> Path:
        return server.state_dir(self.kind, target.label)

    def check(self, target: Target) -> None:
        """Nothing to check before connecting: the settings were resolved already."""

    def lock(self, target: Target) -> contextlib.AbstractContextManager[Any]:
        assert target.url is not None
        return AdvisoryLock(target.url, target.label)

    def connect(self, target: Target, read_only: bool) -> Any:
        import psycopg2

        connection = psycopg2.connect(target.url, application_name="batchlens")
        connection.set_session(readonly=read_only)
        with connection.cursor() as cursor:
            cursor.execute("set time zone 'UTC'")
        connection.commit()
        return connection

    def dlt_destination(self, target: Target, connection: Any) -> Any:
        return dlt.destinations.postgres(credentials=target.url)


class AdvisoryLock:
    """The single-writer lock on a server: a session-level PostgreSQL advisory lock.

    Held on a connection of its own for the whole run; the server releases it when that
    connection ends, so a killed run never leaves it behind.
    """

    def __init__(self, url: str, label: str, wait_seconds: float = WAIT_SECONDS) -> None:
        self.url = url
        self.wait_seconds = wait_seconds
        # 31 bits, so pg_locks shows it as objid with classid 0
        self.key = int(hashlib.sha1(f"batchlens:{label}".encode()).hexdigest(), 16) & 0x7FFFFFFF
        self._connection: Any = None

    def __enter__(self) -> AdvisoryLock:
        import psycopg2

        connection = psycopg2.connect(self.url, application_name="batchlens extract")
        connection.autocommit = True
        deadline = time.monotonic() + self.wait_seconds
        with connection.cursor() as cursor:
            while True:
                cursor.execute("select pg_try_advisory_lock(%s)", [self.key])
                if cursor.fetchone()[0]:
                    break
                if time.monotonic() >= deadline:
                    holder = self._holder(cursor)
                    connection.close()
                    raise LockedError(
                        f"another extraction holds this database ({holder}); nothing was changed"
                    )
                time.sleep(0.05)
        self._connection = connection
        return self

    def _holder(self, cursor: Any) -> str:
        cursor.execute(
            "select a.pid, a.application_name, coalesce(host(a.client_addr), 'local'), "
            "a.backend_start from pg_locks as l join pg_stat_activity as a using (pid) "
            "where l.locktype = 'advisory' and l.granted and l.classid = 0 and l.objid = %s",
            [self.key],
        )
        row = cursor.fetchone()
        if row is None:
            return "a session that just ended"
        pid, application, client, since = row
        return f"server pid {pid}, `{application}` from {client} since {since:%Y-%m-%dT%H:%M:%SZ}"

    def __exit__(self, *exc: object) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()  # ending the session releases the lock
            self._connection = None
