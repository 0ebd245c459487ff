"""DuckLake with a PostgreSQL catalog, offline: the extensions come from PyPI, not the network.

DuckDB fetches `ducklake` and `postgres_scanner` from extensions.duckdb.org the first time
an `ATTACH 'ducklake:postgres:...'` needs them (autoinstall), which fails on a machine
without internet ("Failed to download extension ... Could not establish connection") and
can hang where a firewall drops packets. The `duckdb-extension-ducklake` and
`duckdb-extension-postgres-scanner` wheels ship the official, signed binaries for exactly
one DuckDB version, so batchlens loads them by path (`LOAD '/abs/file'`: no writable
extension directory, nothing copied) and turns autoinstall and autoload off, so a missing
extension is an immediate error instead of a download attempt.

Both dlt (which loads) and `connect` (which reads and builds the views) attach the lake with
the same catalog, data path and metadata schema: the metadata schema is the lake's name in
PostgreSQL (dlt's `METADATA_SCHEMA`), and a reader that omits it sees an empty lake.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import duckdb

from batchlens.errors import UsageError
from batchlens.storage.duckdb_connection import (
    CATALOG,  # the attach name every batchlens connection uses
)

DEFAULT_NAME = "batchlens"  # the lake's name: dlt's ducklake_name and the metadata schema

# extension name -> the PyPI package (import name) that ships its binary
EXTENSION_PACKAGES = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
}

# Never download an extension, never load one from ~/.duckdb behind our back.
OFFLINE_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


def extension_paths() -> dict[str, Path]:
    """The packaged extension binaries for the running DuckDB, by extension name.

    A DuckDB extension loads only into the exact DuckDB version it was built for, so the
    file is looked up under that version and a mismatch is reported as a usage error that
    names the packages to install, before DuckDB fails with a less helpful message.
    """
    version = duckdb.__version__
    paths: dict[str, Path] = {}
    for name, package in EXTENSION_PACKAGES.items():
        spec = importlib.util.find_spec(package)
        folder = Path(spec.origin).parent if spec and spec.origin else None
        path = (
            folder / "extensions" / f"v{version}" / f"{name}.duckdb_extension" if folder else None
        )
        if path is None or not path.is_file():
            pypi = package.replace("_", "-")
            raise UsageError(
                f"the ducklake destination needs the {name} extension for DuckDB {version}: "
                f"pip install {pypi}=={version}"
            )
        paths[name] = path
    return paths


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def load_statements() -> list[str]:
    """`LOAD '<file>'` for each packaged extension."""
    return [f"load {_literal(str(path))}" for path in extension_paths().values()]


def data_path_of(data_path: str) -> str:
    """A local data path made absolute, a URL (s3://, gs://, ...) unchanged.

    DuckLake records the data path in the catalog at creation; dlt resolves a relative
    path against its own working folder. Absolute on both sides, the loader and every
    reader agree on where the files are whatever their working directory.
    """
    scheme = urlsplit(data_path).scheme
    if scheme == "file":
        data_path = urlsplit(data_path).path
    elif len(scheme) > 1:  # a bucket URL; a one-letter scheme is a Windows drive
        return data_path
    return str(Path(data_path).expanduser().resolve())


def dlt_credentials(catalog_url: str, data_path: str, name: str = DEFAULT_NAME) -> object:
    """dlt DuckLake credentials that never reach for the network.

    dlt opens a fresh in-memory DuckDB for every connection it borrows and then ATTACHes
    the lake, which would autoinstall `ducklake` and `postgres_scanner`. `extensions` makes
    dlt run `LOAD <extension>` on each new connection before the ATTACH (the quoted path is
    passed through verbatim), and `global_config` turns autoinstall and autoload off.
    `name` is both the attach name dlt uses and the PostgreSQL schema of the lake's metadata.
    """
    from dlt.destinations.impl.ducklake.configuration import DuckLakeCredentials

    credentials = DuckLakeCredentials(
        ducklake_name=name, catalog=catalog_url, storage=data_path_of(data_path)
    )
    credentials.extensions = [_literal(str(path)) for path in extension_paths().values()]
    credentials.global_config = dict(OFFLINE_CONFIG)
    return credentials


def libpq_parameters(catalog_url: str) -> tuple[str, str | None]:
    """A postgresql:// URL as a libpq `key=value` string without the password, and the password.

    DuckDB shows an attached database's path in `duckdb_databases()` and repeats it in
    connection errors ("Unable to connect to Postgres at postgres://user:pw@..."), so the
    password must not be part of it. The postgres extension takes it from a secret instead,
    but it appends the secret's `key=value` pairs to the path, which only parses when the
    path is itself `key=value` (a URL there fails with 'missing "=" after ...').
    """
    parts = urlsplit(catalog_url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise UsageError("the ducklake catalog must be a postgresql:// URL")
    pairs = {
        "host": parts.hostname,
        "port": str(parts.port) if parts.port else None,
        "dbname": unquote(parts.path.lstrip("/")) or None,
        "user": unquote(parts.username) if parts.username else None,
        **dict(parse_qsl(parts.query)),  # sslmode=require and the like
    }
    text = " ".join(f"{key}={_libpq_value(value)}" for key, value in pairs.items() if value)
    password = unquote(parts.password) if parts.password else None
    return text, password


def _libpq_value(value: str) -> str:
    if value and not any(c in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def attach(
    connection: duckdb.DuckDBPyConnection,
    catalog_url: str,
    data_path: str,
    *,
    alias: str = CATALOG,
    name: str = DEFAULT_NAME,
    read_only: bool = False,
) -> None:
    """ATTACH the lake dlt loads: same catalog, data path and metadata schema, as `alias`.

    The password goes into a temporary (in-memory, this connection only) postgres secret,
    which `duckdb_secrets()` shows redacted. The metadata schema must be dlt's
    `ducklake_name`: without it DuckLake looks in schema `public` and a read-write attach
    silently creates a second, empty lake there.
    """
    parameters, password = libpq_parameters(catalog_url)
    if password is not None:
        connection.execute(
            f"create or replace temporary secret (type postgres, password {_literal(password)})"
        )
    options = [
        f"data_path {_literal(data_path_of(data_path))}",
        f"metadata_schema {_literal(name)}",
    ]
    if read_only:
        options.append("read_only")
    path = _literal("ducklake:postgres:" + parameters)
    connection.execute(f'attach {path} as "{alias}" ({", ".join(options)})')


def connect(
    catalog_url: str, data_path: str, read_only: bool = False, name: str = DEFAULT_NAME
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as `batchlens_db` and in use.

    The same shape as `database.connect` for a DuckDB file, so the models and the report
    run unchanged: `use batchlens_db`, then unqualified names in schema `openai_batches`.
    Time zone UTC, as dlt sets it on its own connections to the lake.
    """
    connection = duckdb.connect(config=dict(OFFLINE_CONFIG))
    try:
        for statement in load_statements():
            connection.execute(statement)
        connection.execute("set TimeZone = 'UTC'")
        attach(connection, catalog_url, data_path, name=name, read_only=read_only)
        connection.execute(f"use {CATALOG}")
    except BaseException:
        connection.close()
        raise
    return connection
