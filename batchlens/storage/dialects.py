"""One SQL for every database: the models and queries are written in DuckDB's SQL, once.

On PostgreSQL they are translated by sqlglot when they run (`transpile`), so a metric is
defined in one place and cannot drift between two copies. What sqlglot cannot translate is
written in SQL both databases share instead (see the comments in `sql/`). The helpers here
also hide the two drivers' differences: DuckDB executes on the connection and takes `$name`
parameters, psycopg2 executes on a cursor and takes `%(name)s` (which sqlglot writes).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

DUCKDB = "duckdb"
POSTGRES = "postgres"
DIALECTS = (DUCKDB, POSTGRES)
SOURCE_DIALECT = DUCKDB  # the dialect everything in `sql/` and in the queries is written in
_LONE_PERCENT = re.compile(r"%(?!\(\w+\)s)")


def check_dialect(dialect: str) -> str:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {DIALECTS}")
    return dialect


def dialect_of(connection: Any) -> str:
    """The dialect of a DB-API connection: psycopg2's are PostgreSQL, anything else DuckDB."""
    return POSTGRES if type(connection).__module__.startswith("psycopg") else DUCKDB


@functools.lru_cache(maxsize=256)
def transpile(sql: str, dialect: str) -> str:
    """`sql` (DuckDB's dialect) as `dialect` writes it; unchanged for DuckDB.

    Cached: the same few models and queries are translated again on every build and every
    report, and parsing is the only slow part.
    """
    if check_dialect(dialect) == SOURCE_DIALECT:
        return sql
    expression = sqlglot.parse_one(sql, read=SOURCE_DIALECT)
    for rewrite in (_utc_wall_clock, _arg_min_max, _expand_group_by_all, _round_numeric):
        expression = expression.transform(rewrite)
    return expression.sql(
        dialect=dialect,
        unsupported_level=ErrorLevel.RAISE,
        comments=False,  # PostgreSQL keeps no comments in a view, and `%` in one breaks params
    )


def _utc_wall_clock(node: exp.Expression) -> exp.Expression:
    """`make_timestamp(epoch_us(t))`, DuckDB's fast UTC wall-clock time of the instant `t`
    (no time zone rules: 5x cheaper than `at time zone` there), as `t at time zone 'UTC'`.
    sqlglot alone makes it `to_timestamp(...)`, an instant again, whose date and hour
    would follow the session's TimeZone."""
    if (
        isinstance(node, exp.UnixToTime)
        and isinstance(node.this, exp.Anonymous)
        and node.this.name.lower() == "epoch_us"
        and len(node.this.expressions) == 1
    ):
        (instant,) = node.this.expressions
        return exp.AtTimeZone(this=instant.copy(), zone=exp.Literal.string("UTC"))
    return node


_ARG_MIN_MAX = "(array_agg(_arg order by _value {order}) filter (where {filter}))[1]"


def _arg_min_max(node: exp.Expression) -> exp.Expression:
    """DuckDB's `arg_min(arg, value)` / `arg_max`: `arg` at the row of the least / greatest
    `value`, rows with either NULL skipped. PostgreSQL has no such aggregate: the first
    element of the args ordered by value says the same."""
    if not isinstance(node, exp.ArgMin | exp.ArgMax):
        return node
    arg, value = node.this, node.expression
    template = sqlglot.parse_one(
        _ARG_MIN_MAX.format(
            order="desc" if isinstance(node, exp.ArgMax) else "asc",
            filter="_arg is not null and _value is not null",
        ),
        read=POSTGRES,
    )
    stand_ins = {"_arg": arg, "_value": value}
    return template.transform(
        lambda n: (
            stand_ins[n.name].copy() if isinstance(n, exp.Column) and n.name in stand_ins else n
        )
    )


def _round_numeric(node: exp.Expression) -> exp.Expression:
    """`round(x, digits)`: PostgreSQL has it for numeric only, and sqlglot makes a division
    double precision (DuckDB's `/` on integers): round a numeric, as DuckDB rounds."""
    if isinstance(node, exp.Round) and node.args.get("decimals") is not None:
        node.set("this", exp.cast(node.this, exp.DataType.build("numeric")))
    return node


def _expand_group_by_all(node: exp.Expression) -> exp.Expression:
    """DuckDB's `group by all` as PostgreSQL can read it: the positions of the select items
    without an aggregate (sqlglot writes `group by all` through unchanged)."""
    group = node.args.get("group") if isinstance(node, exp.Select) else None
    if group is None or not group.args.get("all"):
        return node
    positions = [
        exp.Literal.number(position)
        for position, item in enumerate(node.expressions, start=1)
        if not any(not isinstance(agg.parent, exp.Window) for agg in item.find_all(exp.AggFunc))
    ]
    node.set("group", exp.Group(expressions=positions) if positions else None)
    return node


_PARAMETER = re.compile(r"\$([A-Za-z_]\w*)")


def with_literals(sql: str, params: Mapping[str, Any]) -> str:
    """`sql` (DuckDB's dialect) with each `$name` parameter written as a literal.

    For the queries an extraction asks before its first request: DuckDB's Python client
    imports pandas (0.3 s) the first time it binds any parameter, to compare the value with
    `pandas.NaT`, and bound there it would hold up the requests instead of overlapping them.
    Whole numbers and text only; text is quoted the standard way (a quote doubled, and
    DuckDB reads a backslash as itself), as client-side drivers such as psycopg2 do. Only
    for SQL written in this code base, which has no `$` inside its own literals.
    """

    def literal(match: re.Match[str]) -> str:
        name = match.group(1)
        value = params[name]
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and "\x00" not in value:
            return "'" + value.replace("'", "''") + "'"
        raise TypeError(f"no SQL literal for ${name}: {type(value).__name__}")

    return _PARAMETER.sub(literal, sql)


def dict_rows(connection: Any, dialect: str, sql: str, **params: Any) -> list[dict]:
    """`rows`, each as a dict by column name."""
    names, found = rows(connection, dialect, sql, params)
    return [dict(zip(names, row, strict=True)) for row in found]


def execute(
    connection: Any, dialect: str, sql: str, params: Mapping[str, Any] | None = None
) -> Any:
    """Runs `sql` (DuckDB's dialect, `$name` parameters) and returns a cursor to fetch from."""
    if dialect == DUCKDB:
        return connection.execute(sql, dict(params) if params else None)
    cursor = connection.cursor()
    sql = transpile(sql, dialect)
    if params:  # psycopg2 reads `%(name)s` as a parameter, and `%%` as a `%` (modulo, LIKE)
        sql = _LONE_PERCENT.sub("%%", sql)
    cursor.execute(sql, dict(params) if params else None)
    return cursor


def rows(
    connection: Any, dialect: str, sql: str, params: Mapping[str, Any] | None = None
) -> tuple[list[str], Sequence[tuple]]:
    """Column names and rows of one query."""
    cursor = execute(connection, dialect, sql, params)
    names = [column[0] for column in cursor.description or []]
    return names, cursor.fetchall()
