"""The product's queries, read from `sql/queries/<concern>/<name>.sql`.

Every query the report, the page, `check`, the price list, the notebooks and the demo run
lives in a file beside the models, so that sqlfluff lints it with them and a reader finds
every SQL the product runs under `sql/`. They are written like the models (DuckDB's SQL,
`$name` parameters; storage.dialects translates them for PostgreSQL) but are never built
into views: the view builder reads `sql/staging` and `sql/marts` only. They come from the
installed package (`batchlens.sql`, package data), read once per process.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from batchlens.storage.dialects import rows

QUERIES = "queries"


@functools.cache
def load(name: str) -> str:
    """The text of `sql/queries/<name>.sql`, for instance `load("check/rates")`."""
    concern, _, query = name.rpartition("/")
    if not concern or not query or name != name.lower():
        raise ValueError(f"a query is named <concern>/<name> in lower case, got {name!r}")
    path = resources.files("batchlens.sql").joinpath(QUERIES, concern, f"{query}.sql")
    return path.read_text(encoding="utf-8").strip().rstrip(";")


class Rows(list):
    """A query's rows as dicts, with its column names: a table shows its header (and the
    columns the SQL chose, in its order) even when there is no row. JSON sees a list."""

    def __init__(self, columns: list[str], found: Any = ()) -> None:
        super().__init__(dict(zip(columns, row, strict=True)) for row in found)
        self.columns = list(columns)


def read(connection: Any, dialect: str, name: str, /, **params: Any) -> Rows:
    """The rows of the query `name`, run on `connection` in `dialect` with `params`."""
    columns, found = rows(connection, dialect, load(name), params)
    return Rows(columns, found)
