"""Where the history lives: a DuckDB file, a shared PostgreSQL database, or a DuckLake.

Each target answers the same questions for a run: where dlt loads (one of dlt's own
destinations), how to reach the tables with SQL (a DB-API connection and its dialect),
which lock keeps a second writer out (a file lock beside a DuckDB file; a PostgreSQL
advisory lock on a server, where writers run on different machines), and where dlt's
working folder goes. Connection settings come the dlt way (`[destination.postgres]` and
`[destination.ducklake]` credentials in `.dlt/secrets.toml` or env), never from flags.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus, urlsplit

import dlt
from dlt.common.configuration import configspec
from dlt.common.configuration.specs import ConnectionStringCredentials
from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from .errors import LockedError, UsageError
from .lock import WAIT_SECONDS, DatabaseLock

KINDS = ("duckdb", "postgres", "ducklake")


@dataclass
class Target:
    kind: str
    label: str  # printed in summaries and messages: never holds a password
    db: Path | None = None  # the DuckDB file
    url: str | None = field(default=None, repr=False)  # PostgreSQL, or DuckLake's catalog
    data_path: str | None = None  # DuckLake's data files

    @property
    def dialect(self) -> str:
        return "postgres" if self.kind == "postgres" else "duckdb"

    def secrets(self) -> list[str]:
        """The password, and the forms a URL or a message may spell it in."""
        if not self.url:
            return []
        password = ConnectionStringCredentials(self.url).password
        if not password:
            return []
        password = str(password)
        in_url = urlsplit(self.url).netloc.rpartition("@")[0].partition(":")[2]
        spellings = {password, in_url, quote(password, safe=""), quote_plus(password)}
        return sorted(spelling for spelling in spellings if spelling)

    def state_dir(self) -> Path:
        """dlt's working folder and the lock file: beside a DuckDB file; per server else."""
        if self.db is not None:
            return self.db.with_name(self.db.name + ".batchlens")
        root = Path(os.environ.get("BATCHLENS_STATE_DIR") or "~/.local/state/batchlens")
        digest = hashlib.sha1(self.label.encode()).hexdigest()[:12]
        return root.expanduser() / f"{self.kind}-{digest}"

    def check(self) -> None:
        if self.db is not None:
            check_database_path(self.db)

    def lock(self) -> contextlib.AbstractContextManager[Any]:
        if self.db is not None:
            return DatabaseLock(self.state_dir() / "lock")
        assert self.url is not None
        return AdvisoryLock(self.url, self.label)

    def connect(self, read_only: bool = False) -> Any:
        """A DB-API connection where schema `openai_batches` holds the tables and views."""
        if self.kind == "postgres":
            import psycopg2

            connection = psycopg2.connect(self.url, application_name="batchlens")
            connection.set_session(readonly=read_only)
            with connection.cursor() as cursor:
                cursor.execute("set time zone 'UTC'")
            connection.commit()
            return connection
        if self.kind == "ducklake":
            from . import ducklake

            assert self.url is not None and self.data_path is not None
            return ducklake.connect(self.url, self.data_path, read_only=read_only)
        from .database import connect

        assert self.db is not None
        return connect(self.db, read_only=read_only)

    def dlt_destination(self, connection: Any) -> Any:
        if self.kind == "postgres":
            return dlt.destinations.postgres(credentials=self.url)
        if self.kind == "ducklake":
            from . import ducklake

            assert self.url is not None and self.data_path is not None
            return dlt.destinations.ducklake(
                credentials=ducklake.dlt_credentials(self.url, self.data_path)
            )
        from .database import dlt_credentials

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


def resolve_target(
    destination: str | None, db: str | None, default_db: Path | None = None
) -> Target:
    """`--destination`, else `destination` under `[batchlens]` (env BATCHLENS__DESTINATION)."""
    kind = destination or dlt.config.get("batchlens.destination") or "duckdb"
    if kind not in KINDS:
        raise UsageError(f"--destination must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "duckdb":
        from .config import database_path

        path = database_path(db) if db or default_db is None else default_db
        return Target("duckdb", label=str(path), db=path)
    if db:
        raise UsageError(
            f"--db names a DuckDB file; the {kind} destination is configured the dlt way "
            f"([destination.{kind}.credentials] in .dlt/secrets.toml)"
        )
    if kind == "postgres":
        url = _connection_url("destination.postgres.credentials", "postgres")
        return Target("postgres", label=_label(url), url=url)
    catalog = _connection_url("destination.ducklake.credentials.catalog", "ducklake")
    storage = dlt.config.get("destination.ducklake.credentials.storage")
    if not storage:
        raise UsageError(
            "the ducklake destination needs a data path: storage under "
            "[destination.ducklake.credentials] (a folder or a bucket URL)"
        )
    return Target(
        "ducklake",
        label=f"ducklake {_label(catalog)} data={storage}",
        url=catalog,
        data_path=str(storage),
    )


def _connection_url(key: str, kind: str) -> str:
    """The connection under `key`, resolved by dlt's own credential specs, as a URL.

    A URL or a table of fields, from secrets.toml, config.toml or the environment, the way
    dlt reads it when it loads. A setting that is missing or cannot be used is a
    configuration error naming the setting, never its value: it may be the password.
    """
    from dlt.common.configuration import resolve_configuration
    from dlt.common.configuration.exceptions import (
        ConfigFieldMissingException,
        ConfigurationException,
        ConfigValueCannotBeCoercedException,
    )

    *sections, _ = key.split(".")
    env = key.upper().replace(".", "__")
    spec = PostgresCredentials() if kind == "postgres" else _CatalogCredentials()
    try:
        credentials = resolve_configuration(spec, sections=tuple(sections))
    except ConfigFieldMissingException as exc:
        if dlt.secrets.get(key) is None:
            raise UsageError(
                f"the {kind} destination needs its connection: set {env} or [{key}] "
                "in .dlt/secrets.toml"
            ) from None
        missing = ", ".join(f"`{name}`" for name in exc.fields)
        raise UsageError(
            f"the {kind} destination is missing {missing} of [{key}] (in .dlt/secrets.toml, "
            f"or {env}__{exc.fields[0].upper()}, or in the connection string)"
        ) from None
    except ConfigValueCannotBeCoercedException as exc:
        raise UsageError(
            f"`{exc.field_name}` of [{key}] is not valid for the {kind} destination "
            f"(expected {getattr(exc.hint, '__name__', exc.hint)})"
        ) from None
    except ConfigurationException:
        raise UsageError(
            f"[{key}] is not a connection string such as "
            "postgresql://user:password@host:5432/database, nor a table of its fields"
        ) from None
    return str(credentials.to_native_representation())


def _label(url: str) -> str:
    c = ConnectionStringCredentials(url)
    port = f":{c.port}" if c.port else ""
    return f"postgres://{c.username}@{c.host}{port}/{c.database}"


@configspec(init=False)
class _CatalogCredentials(ConnectionStringCredentials):
    """DuckLake's catalog, found under `[destination.ducklake.credentials.catalog]`."""

    __section__: ClassVar[str] = "catalog"
    drivername: str = "postgresql"


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
