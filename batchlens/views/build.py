"""Builds the SQL models: every file of `sql/staging` and `sql/marts` becomes a view.

The metric definitions live in SQL only (`sql/staging`, `sql/marts`); this module just
applies them, in dependency order and in one transaction, so readers never see half of an
update. Views, not tables: they cost nothing to rebuild after each load and always show
the current rows. The models are written in DuckDB's SQL; on PostgreSQL, sqlglot translates
them as they are applied (see `dialects`).
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import logging
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import sqlglot.errors

from batchlens.errors import BatchlensError, UsageError, require_database
from batchlens.storage.dialects import (
    DUCKDB,
    POSTGRES,
    check_dialect,
    dialect_of,
    execute,
    transpile,
)
from batchlens.storage.duckdb_connection import connect
from batchlens.views import queries
from batchlens.views.prices import (
    Overrides,
    load_overrides,
    price_inputs,
    price_rows,
    table_statements,
)
from openai_batches.settings import (
    BATCHES_TABLE,
    DATASET_NAME,
    ERRORS_TABLE,
    EXTRACTIONS_TABLE,
    FILES_TABLE,
    REQUEST_COUNT_FIELDS,
    REQUESTS_TABLE,
    STRING_FIELDS,
    TIMESTAMP_FIELDS,
    USAGE_FIELDS,
)

log = logging.getLogger(__name__)

SCHEMA = DATASET_NAME
LAYERS = ("staging", "marts")  # built in this order; a model may only read earlier layers
SQL_DIR_ENV = "BATCHLENS_SQL_DIR"

# What a staging model reads from each loaded table, with its type. Used only when a table
# does not exist yet (a first extraction that found no batch creates no `batches` table):
# the staging view then reads an empty relation of this shape, so every model exists and
# answers "nothing" instead of failing, and the next build after a load swaps in the table.
SOURCE_COLUMNS: dict[str, dict[str, str]] = {
    BATCHES_TABLE: {
        **dict.fromkeys(STRING_FIELDS, "varchar"),
        **dict.fromkeys(TIMESTAMP_FIELDS, "timestamptz"),
        **{f"request_counts__{name}": "bigint" for name in REQUEST_COUNT_FIELDS},
        **{"usage__" + "__".join(path): "bigint" for path in USAGE_FIELDS},
        "metadata": "json",
        "account": "varchar",
    },
    ERRORS_TABLE: {
        "account": "varchar",
        "batch_id": "varchar",
        "position": "bigint",
        "code": "varchar",
        "message": "varchar",
        "param": "varchar",
        "line": "bigint",
    },
    # a database loaded before files were fetched has neither of these two
    REQUESTS_TABLE: {
        **dict.fromkeys(("account", "batch_id", "file_id", "kind", "line_id"), "varchar"),
        "custom_id": "varchar",
        "status_code": "bigint",
        **dict.fromkeys(("error_code", "error_type", "error_message", "error_param"), "varchar"),
        "model": "varchar",
        **dict.fromkeys(
            ("input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "total_tokens"),
            "bigint",
        ),
    },
    FILES_TABLE: {
        **dict.fromkeys(("account", "file_id", "batch_id", "kind", "state"), "varchar"),
        **dict.fromkeys(("lines", "bad_lines", "bytes"), "bigint"),
        "loaded_at": "timestamptz",
    },
    EXTRACTIONS_TABLE: {
        "account": "varchar",
        "mode": "varchar",
        "started_at": "timestamptz",
        "finished_at": "timestamptz",
        **dict.fromkeys(
            (
                "pages",
                "list_requests",
                "retrieve_requests",
                "http_attempts",
                "batches_loaded",
                "status_changes",
                "still_open",
            ),
            "bigint",
        ),
        "_dlt_load_id": "varchar",
        "_dlt_id": "varchar",
    },
}

# One row: the fingerprint of what the views were last built from (every model's SQL, the
# loaded tables' columns and types, the dialect). An extraction that changed none of them
# skips the build: the views read the tables when queried, so new rows need no rebuild.
BUILT_FROM_TABLE = "_batchlens_views"

_COMMENT = re.compile(r"--[^\n]*")
_REFERENCE = re.compile(rf"\b{SCHEMA}\.(\w+)\b")


@dataclass(frozen=True)
class Model:
    """One SQL file: its view name (the file stem), layer, body and the models it reads."""

    name: str
    layer: str
    path: Path
    sql: str
    depends_on: frozenset[str]


def sql_dir() -> Path:
    """The package's own `sql/` (package data, so a wheel has it too), unless $BATCHLENS_SQL_DIR."""
    override = os.environ.get(SQL_DIR_ENV)
    return Path(override) if override else Path(str(resources.files("batchlens.sql")))


def discover(root: Path | None = None) -> list[Model]:
    """Every model under `root`, in the order it must be built.

    Dependencies are read from the SQL itself (`openai_batches.<model>` references), so
    adding a model is adding a file: there is no list to keep in step with it.
    """
    root = root or sql_dir()
    files = {
        path.stem: (layer, path)
        for layer in LAYERS
        for path in sorted((root / layer).glob("*.sql"))
    }
    if not files:
        raise BatchlensError(f"no SQL models found under {root}")
    models = []
    for name, (layer, path) in files.items():
        sql = path.read_text().strip().rstrip(";")
        referenced = set(_REFERENCE.findall(_COMMENT.sub("", sql)))
        models.append(Model(name, layer, path, sql, frozenset(referenced & set(files) - {name})))
    return build_order(models)


def build_order(models: list[Model]) -> list[Model]:
    """Layer by layer, each model after the ones it reads; ties by name, so runs repeat."""
    by_name = {model.name: model for model in models}
    rank = {layer: index for index, layer in enumerate(LAYERS)}
    for model in models:
        for dependency in model.depends_on:
            if rank[by_name[dependency].layer] > rank[model.layer]:
                raise BatchlensError(
                    f"model {model.name} ({model.layer}) reads {dependency}, "
                    f"which is in the later layer {by_name[dependency].layer}"
                )
    waiting = {model.name: set(model.depends_on) for model in models}
    ready = [(rank[m.layer], m.name) for m in models if not m.depends_on]
    heapq.heapify(ready)
    ordered: list[Model] = []
    while ready:
        _, name = heapq.heappop(ready)
        ordered.append(by_name[name])
        for other, needs in waiting.items():
            if name in needs:
                needs.remove(name)
                if not needs:
                    heapq.heappush(ready, (rank[by_name[other].layer], other))
    if len(ordered) != len(models):
        stuck = sorted(name for name, needs in waiting.items() if needs)
        raise BatchlensError(f"the SQL models read each other in a cycle: {', '.join(stuck)}")
    return ordered


def build_models(
    db: Path | Any,
    root: Path | None = None,
    dialect: str = DUCKDB,
    overrides: Overrides | None = None,
    only_if_changed: bool = False,
) -> list[str]:
    """Create or replace every view and the `model_prices` table, all or none; returns the
    view names in build order.

    With `only_if_changed`, nothing is done (and [] returned) when the views exist and were
    built from the same SQL files and the same loaded tables' columns and types.

    `db` is a DuckDB file, or an open connection: DuckDB's, or psycopg2's with `dialect`
    "postgres" (the models are then translated by sqlglot, see `dialects`). `overrides`
    are the prices that win over the catalogue's (`prices`); without them, the configured
    file ($BATCHLENS_PRICES, `prices` under [sources.openai_batches]) if any.
    Raises UsageError when the database does not exist or holds no loaded data at all
    (nothing to build on yet: run `batchlens extract` first).
    """
    check_dialect(dialect)
    models = discover(root)
    overrides = overrides if overrides is not None else load_overrides()
    if isinstance(db, str | Path):
        if dialect != DUCKDB:
            raise UsageError(f"a path names a DuckDB file, not a {dialect} database: {db}")
        require_database(db)
        with contextlib.closing(connect(Path(db))) as connection:
            return _build(connection, DUCKDB, models, str(db), overrides, only_if_changed)
    if dialect_of(db) != dialect:
        raise UsageError(f"build_models got a {dialect_of(db)} connection with dialect {dialect}")
    label = "the database" if dialect != DUCKDB else str(db)
    return _build(db, dialect, models, label, overrides, only_if_changed)


def check_models(
    connection: Any,
    dialect: str = DUCKDB,
    root: Path | None = None,
    overrides: Overrides | None = None,
) -> None:
    """Builds every view and rolls it back: raises what `build_models` would, changes nothing.

    `extract` asks this before it loads, so that a broken or missing model fails the run
    while the database and the incremental state are still as they were. Before anything is
    loaded the views are tried over typed empty relations in a scratch in-memory DuckDB.
    """
    check_dialect(dialect)
    models = discover(root)
    overrides = overrides if overrides is not None else load_overrides()
    try:
        loaded = _source_columns(connection, dialect) is not None
        if loaded:
            # unchanged since the last build (same SQL, tables and prices): it built then
            _build(connection, dialect, models, "the database", overrides, True, commit=False)
    finally:
        # A server connection outside autocommit holds its reads' locks until the
        # transaction ends: dlt's `alter table` for a new field would wait on them forever.
        if dialect != DUCKDB and not connection.autocommit and not connection.closed:
            connection.rollback()
    if loaded:
        return
    for model in models:  # the translation a server would get
        _body(model, {}, dialect)
    with contextlib.closing(duckdb.connect()) as scratch:
        scratch.execute(f"create schema {SCHEMA}")
        _build(scratch, DUCKDB, models, "a scratch database", overrides, commit=False)


def _build(
    connection: Any,
    dialect: str,
    models: list[Model],
    label: str,
    overrides: Overrides | None,
    only_if_changed: bool = False,
    commit: bool = True,
) -> list[str]:
    loaded = _source_columns(connection, dialect)
    if loaded is None:
        raise UsageError(
            f"no batches have been loaded into {label} yet; run `batchlens extract` first"
        )
    in_history = _models_in_history(connection, dialect, loaded)
    fingerprint = _fingerprint(models, loaded, dialect, price_inputs(in_history, overrides))
    if only_if_changed and _built_from(connection, dialect, models) == fingerprint:
        return []
    prices = price_rows(in_history, overrides)
    substitutes = {
        table: relation
        for table in SOURCE_COLUMNS
        if (relation := completed_relation(table, loaded.get(table), dialect)) is not None
    }
    if substitutes:
        log.info("building the models over completed %s", ", ".join(substitutes))
    bodies = [(model, _body(model, substitutes, dialect)) for model in models]
    tables = table_statements(prices, dialect)
    if dialect == DUCKDB:
        _create_duckdb(connection, bodies, tables, commit)
    else:
        _create_postgres(connection, bodies, tables, commit)
    if commit:
        _remember_built_from(connection, dialect, fingerprint)
    return [model.name for model in models]


def _models_in_history(connection: Any, dialect: str, loaded: dict[str, set[str]]) -> list[str]:
    """Every model name the loaded batches carry (none before the API had `model`)."""
    if "model" not in loaded.get(BATCHES_TABLE, set()):
        return []
    return [row["model"] for row in queries.read(connection, dialect, "views/models_in_history")]


def _fingerprint(
    models: list[Model], loaded: dict[str, dict[str, str]], dialect: str, prices: str
) -> str:
    """What the views and `model_prices` are built from; the same one means nothing to do."""
    digest = hashlib.sha256(dialect.encode())
    digest.update(prices.encode())  # a new model, a new price, a new catalogue
    for model in sorted(models, key=lambda m: m.name):
        digest.update(f"\0{model.layer}/{model.name}\0{model.sql}".encode())
    for table in sorted(SOURCE_COLUMNS):  # the tables the models read, not the marker
        for column, kind in sorted(loaded.get(table, {}).items()):
            digest.update(f"\0{table}.{column}:{kind}".encode())
    return digest.hexdigest()


def _built_from(connection: Any, dialect: str, models: list[Model]) -> str | None:
    """The fingerprint of the last build, or None when a view is missing or none is known."""
    try:
        views = queries.read(connection, dialect, "views/built_views", schema=SCHEMA)
        if {model.name for model in models} - {row["view_name"] for row in views}:
            return None
        found = [
            (row["fingerprint"],) for row in queries.read(connection, dialect, "views/built_from")
        ]
    except (duckdb.Error, sqlglot.errors.SqlglotError, _postgres_error()):
        if dialect != DUCKDB and not connection.autocommit:
            connection.rollback()  # a failed statement poisons the rest of the transaction
        return None
    return found[0][0] if len(found) == 1 else None


def _remember_built_from(connection: Any, dialect: str, fingerprint: str) -> None:
    table = f"{SCHEMA}.{BUILT_FROM_TABLE}"
    execute(connection, dialect, f"create table if not exists {table} (fingerprint varchar)")
    execute(connection, dialect, f"delete from {table}")
    execute(
        connection,
        dialect,
        f"insert into {table} values ($fingerprint)",
        {"fingerprint": fingerprint},
    )
    if dialect != DUCKDB and not connection.autocommit:
        connection.commit()


def _postgres_error() -> type[Exception]:
    try:
        import psycopg2
    except ImportError:  # the postgres extra is not installed: no such connection exists
        return duckdb.Error
    return psycopg2.Error


def _body(model: Model, substitutes: dict[str, str], dialect: str) -> str:
    """The model's SQL as the view's body: unqualified references, in `dialect`."""
    sql = _REFERENCE.sub(r"\1", _with_substitutes(model.sql, substitutes))
    try:
        return transpile(sql, dialect)
    except sqlglot.errors.SqlglotError as exc:
        raise _model_error(model, exc) from exc


def _create_duckdb(
    connection: duckdb.DuckDBPyConnection,
    bodies: list[tuple[Model, str]],
    tables: list[tuple[str, list[tuple]]],
    commit: bool = True,
) -> None:
    catalog, schema = connection.execute("select current_database(), current_schema()").fetchone()
    # Views are created inside the dataset's schema with unqualified references, which
    # DuckDB binds in the view's own schema whatever the file's catalog is called.
    connection.execute(f'use "{catalog}"."{SCHEMA}"')
    connection.execute("begin transaction")
    try:
        for statement, parameters in tables:
            if parameters:
                connection.executemany(statement, parameters)
            else:
                connection.execute(statement)
        for model, body in bodies:
            try:
                connection.execute(f"create or replace view {model.name} as\n{body}")
            except duckdb.Error as exc:
                raise _model_error(model, exc) from exc
        connection.execute("commit" if commit else "rollback")
    except BaseException:
        connection.execute("rollback")
        raise
    finally:
        connection.execute(f'use "{catalog}"."{schema}"')


def _create_postgres(
    connection: Any,
    bodies: list[tuple[Model, str]],
    tables: list[tuple[str, list[tuple]]],
    commit: bool = True,
) -> None:
    """One transaction: PostgreSQL's DDL is transactional, so readers see all or nothing.

    `create or replace view` cannot change a view's columns there, so the views are dropped
    first (the readers of a view before it, `cascade` for views others made on top of them)
    and created again. `search_path` makes the unqualified references bind in the schema.
    """
    import psycopg2

    autocommit = connection.autocommit
    with connection.cursor() as cursor:
        try:
            if autocommit:
                cursor.execute("begin")
            cursor.execute(f"set local search_path to {SCHEMA}")
            for model, _ in reversed(bodies):
                cursor.execute(f"drop view if exists {model.name} cascade")
            for statement, parameters in tables:
                if parameters:
                    cursor.executemany(statement, parameters)
                else:
                    cursor.execute(statement)
            for model, body in bodies:
                try:
                    cursor.execute(f"create view {model.name} as\n{body}")
                except psycopg2.Error as exc:
                    raise _model_error(model, exc) from exc
            if not commit:
                raise _DryRun
            if autocommit:
                cursor.execute("commit")
            else:
                connection.commit()
        except BaseException as exc:
            if connection.closed:
                raise
            if autocommit:
                cursor.execute("rollback")
            else:
                connection.rollback()
            if isinstance(exc, _DryRun):
                return
            raise


class _DryRun(Exception):
    """Ends a check's transaction through the same rollback as a failure."""


def _model_error(model: Model, exc: Exception) -> BatchlensError:
    first_line = str(exc).strip().splitlines()[0]
    return BatchlensError(f"model {model.name} ({model.path}): {first_line}")


def _source_columns(connection: Any, dialect: str) -> dict[str, dict[str, str]] | None:
    """The loaded tables of the dataset, their columns and types; None when there is no schema."""
    (found,) = queries.read(connection, dialect, "views/has_schema", schema=SCHEMA)
    if not found["found"]:
        return None
    columns: dict[str, dict[str, str]] = {}
    for row in queries.read(connection, dialect, "views/loaded_columns", schema=SCHEMA):
        columns.setdefault(row["table_name"], {})[row["column_name"]] = str(row["data_type"])
    return columns


def completed_relation(
    table: str, present: Collection[str] | None, dialect: str = DUCKDB
) -> str | None:
    """What a model reads instead of `table` when the table or some of its columns are missing.

    A first extraction that found no batch creates no table, and a table loaded by an older
    loader may lack a column the API added since (`model`, `usage`, ...): the models then
    read typed nulls instead of failing. None when the table is complete.
    """
    expected = SOURCE_COLUMNS[table]
    if present is None:
        return empty_relation(table, dialect)
    missing = {name: kind for name, kind in expected.items() if name not in present}
    if not missing:
        return None
    nulls = ", ".join(_typed_null(name, kind, dialect) for name, kind in missing.items())
    return f"(select *, {nulls} from {SCHEMA}.{table}) as {table}"


def empty_relation(table: str, dialect: str = DUCKDB) -> str:
    """A subquery with the columns and types of `table` and no rows."""
    columns = ", ".join(
        _typed_null(name, kind, dialect) for name, kind in SOURCE_COLUMNS[table].items()
    )
    return f"(select {columns} limit 0) as {table}"


def _typed_null(name: str, kind: str, dialect: str) -> str:
    # the types dlt gives these columns there: `json` is `jsonb` on PostgreSQL
    kind = "jsonb" if kind == "json" and dialect == POSTGRES else kind
    return f"cast(null as {kind}) as {name}"


def _with_substitutes(sql: str, substitutes: dict[str, str]) -> str:
    for table, relation in substitutes.items():
        # `(?!\w)`: `openai_batches.batches` must not match `openai_batches.batches__errors__data`
        sql = re.sub(rf"\b{SCHEMA}\.{table}(?!\w)", lambda _, r=relation: r, sql)
    return sql
