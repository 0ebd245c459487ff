"""`batchlens sql`: ad-hoc read-only SQL against the views, with nothing else installed.

The query runs in the destination's own SQL (DuckDB's for a file or a DuckLake,
PostgreSQL's on a server), on a read-only connection whose search path starts at the
views' schema, so both `openai_batches.open_batches` and `open_batches` work. A query
that fails is the user's to fix: one line, exit 2, never a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table
from rich.text import Text

from batchlens.errors import UsageError, classify, first_line
from batchlens.storage.readers import EmptyDatabaseError
from batchlens.storage.target import Target
from batchlens.views.build import SCHEMA

FORMATS = ("table", "csv", "json")


def run_query(target: Target, sql: str) -> tuple[list[str], list[tuple]]:
    """Column names and rows of `sql`, read on a read-only connection to `target`."""
    if not sql.strip():
        raise UsageError("the query is empty")
    target.require_database()
    connection = _open(target)
    try:
        if target.dialect == "postgres":
            return _run_postgres(connection, sql)
        return _run_duckdb(connection, sql, target.label)
    finally:
        connection.close()


def _open(target: Target) -> Any:
    try:
        return target.connect(read_only=True)
    except duckdb.Error as exc:
        if classify(exc):  # held by a writer: the CLI reports it with its own exit code
            raise
        raise UsageError(f"cannot open the database {target.label}: {first_line(exc)}") from None


def _run_duckdb(
    connection: duckdb.DuckDBPyConnection, sql: str, label: str
) -> tuple[list[str], list[tuple]]:
    # session statements, built from identifiers (the file's catalog, the schema): not
    # queries, so they stay here rather than in sql/queries/
    connection.execute("set TimeZone = 'UTC'")
    (catalog,) = connection.execute("select current_database()").fetchone()
    try:
        connection.execute(f"set search_path = '{catalog}.{SCHEMA},{catalog}.main'")
    except duckdb.CatalogException:  # no schema openai_batches: an empty DuckDB file
        raise EmptyDatabaseError(label, "duckdb") from None
    try:
        cursor = connection.execute(sql)
        if cursor.description is None:
            return [], []
        return [column[0] for column in cursor.description], cursor.fetchall()
    except duckdb.Error as exc:
        if classify(exc):
            raise
        raise UsageError(f"the query failed: {first_line(exc)}") from None


def _run_postgres(connection: Any, sql: str) -> tuple[list[str], list[tuple]]:
    import psycopg2

    try:
        with connection.cursor() as cursor:
            cursor.execute(f"set search_path to {SCHEMA}, public")  # an identifier, as above
            cursor.execute(sql)
            if cursor.description is None:
                return [], []
            return [column[0] for column in cursor.description], cursor.fetchall()
    except psycopg2.Error as exc:
        if classify(exc):  # the server went away: not the query's fault
            raise
        raise UsageError(f"the query failed: {first_line(exc)}") from None


def render(names: Sequence[str], found: Sequence[tuple], fmt: str) -> str:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([[_plain(value) for value in row] for row in found])
        return out.getvalue().rstrip("\n")
    if fmt == "json":
        records = [dict(zip(names, map(_jsonable, row), strict=True)) for row in found]
        return json.dumps(records, indent=2, allow_nan=False)
    return _table(names, found)


def _table(names: Sequence[str], found: Sequence[tuple]) -> str:
    width = shutil.get_terminal_size((200, 24)).columns  # 200 when piped: fewer folds
    console = Console(file=io.StringIO(), width=width, color_system=None, record=True)
    table = Table(show_edge=False, caption=f"{len(found)} row{'s' * (len(found) != 1)}")
    for name in names:
        table.add_column(Text(name), overflow="fold")
    for row in found:
        # Text, not str: values from the API may hold rich markup like "[bold]"
        table.add_row(*(Text("NULL" if value is None else _plain(value)) for value in row))
    console.print(table)
    return console.export_text().rstrip("\n")


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
