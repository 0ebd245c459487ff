"""docs/metrics.md describes every view and column the models build, and nothing else.

The document's shape is the contract every helper writes to: a heading `## \\`view\\``
(anything after the name, such as `(added by <topic>)`, adds rows to the same view), a
`Grain:` line, and a table whose rows start with `| \\`column\\` |`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from batchlens.config import Account
from batchlens.notebooks import helper as notebook
from batchlens.run.extract import run_extraction
from batchlens.simulator.server import Simulator
from batchlens.views.build import discover, sql_dir
from openai_batches.settings import STATUSES, TERMINAL_STATUSES

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
API_KEY = "sk-test-metrics-doc-0001"
# Tables the model build writes for users to query, documented like the views.
BUILT_TABLES = ("model_prices",)
HEADING = re.compile(r"^## `(?P<view>\w+)`")
ROW = re.compile(r"^\| `(?P<column>\w+)` \|")


def documented(text: str) -> tuple[dict[str, list[str]], dict[str, bool]]:
    """View -> its documented columns, in order; view -> whether a section gave its grain."""
    columns: dict[str, list[str]] = defaultdict(list)
    grain: dict[str, bool] = defaultdict(bool)
    view = None
    for line in text.splitlines():
        if line.startswith("## "):
            match = HEADING.match(line)
            view = match["view"] if match else None
            if view:
                columns[view]  # a view with no rows yet is still documented
        elif view and line.startswith("Grain:"):
            grain[view] = True
        elif view and (match := ROW.match(line)):
            columns[view].append(match["column"])
    return dict(columns), dict(grain)


def test_the_parser_reads_added_sections_into_the_same_view() -> None:
    text = (
        "## `facts`\n\nGrain: one row per x.\n\n| column | meaning |\n| --- | --- |\n"
        "| `a` | first |\n| `b` | second |\n\n## Not a view\n\n| `z` | ignored |\n\n"
        "## `facts` (added by alerts)\n\n| column | meaning |\n| --- | --- |\n| `c` | third |\n"
    )
    assert documented(text) == ({"facts": ["a", "b", "c"]}, {"facts": True})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Every view's columns, in order, from a database the models were built on."""
    db = tmp_path_factory.mktemp("metrics") / "batchlens.duckdb"
    with Simulator(batches=60, seed=5, api_key=API_KEY) as sim:
        run_extraction(db, Account(name="default", base_url=sim.url, api_key=API_KEY))
    with duckdb.connect(str(db), read_only=True) as connection:
        found = connection.execute(
            "select c.table_name, c.column_name from information_schema.columns as c "
            "join information_schema.tables as t using (table_catalog, table_schema, table_name) "
            "where c.table_schema = 'openai_batches' "
            "and (t.table_type = 'VIEW' or t.table_name in ?) "
            "order by c.table_name, c.ordinal_position",
            [list(BUILT_TABLES)],
        ).fetchall()
    views: dict[str, list[str]] = defaultdict(list)
    for view, column in found:
        views[view].append(column)
    return dict(views)


def test_every_view_is_documented_and_every_documented_view_exists(
    built: dict[str, list[str]],
) -> None:
    columns, grain = documented(DOC.read_text())
    views = {model.name for model in discover()}
    assert set(built) == views | set(BUILT_TABLES)  # the doc test sees them all
    assert sorted(set(built) - set(columns)) == [], "views missing from docs/metrics.md"
    assert sorted(set(columns) - set(built)) == [], "docs/metrics.md names views that do not exist"
    assert sorted(view for view in columns if not grain.get(view)) == [], "no Grain: line"


def test_every_column_is_documented_once_and_every_documented_column_exists(
    built: dict[str, list[str]],
) -> None:
    columns, _ = documented(DOC.read_text())
    problems = {}
    for view, names in built.items():
        doc = columns.get(view, [])
        undocumented = [name for name in names if name not in doc]
        missing = [name for name in doc if name not in names]
        twice = sorted({name for name in doc if doc.count(name) > 1})
        if undocumented or missing or twice:
            problems[view] = {
                "undocumented": undocumented,
                "no such column": missing,
                "twice": twice,
            }
    assert problems == {}


def test_the_statuses_view_agrees_with_the_loader_and_the_notebooks() -> None:
    """The loader (which batches stay open) keeps its own lists in Python; they must say what
    the `statuses` view says. The notebooks' legend order is read from the view itself."""
    with duckdb.connect() as connection:
        rows = connection.execute((sql_dir() / "marts" / "statuses.sql").read_text()).fetchall()
    order = {status: lifecycle_order for status, lifecycle_order, *_ in rows}
    assert set(order) == set(STATUSES)
    assert {row[0] for row in rows if row[4]} == TERMINAL_STATUSES
    assert {row[0] for row in rows if row[3]} == {"validating", "in_progress", "finalizing"}
    assert {row[0] for row in rows if row[2]} == set(STATUSES) - TERMINAL_STATUSES
    assert list(notebook.STATUSES) == sorted(order, key=order.__getitem__)
