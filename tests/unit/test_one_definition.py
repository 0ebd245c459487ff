"""Every rate and status set is defined once, in `sql/`: Python only selects columns.

The product's Python (batchlens/ and notebooks/, the simulator aside: it stands for the API
and spells its words itself) is read as a syntax tree, never imported or run. It may not
hold a literal tuple, list, set or dict naming two or more status words (a status set:
read the `statuses` view), a string quoting two or more of them as SQL does (a status list
in a query: queries live in `sql/queries/`), a string dividing by `nullif(` (a rate in a
query) or a division whose operands name failed, terminal or total counts (a rate in
Python). The status words come from the `statuses` model itself, so this test keeps no
list of its own either.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXCLUDED = ("batchlens/simulator/",)
COUNT_WORDS = {"failed", "terminal", "total"}
SQL_RATE = re.compile(r"/\s*nullif\s*\(", re.IGNORECASE)


def status_words() -> frozenset[str]:
    """The words the `statuses` view lists, from its own SQL (it reads no table)."""
    sql = (ROOT / "sql" / "marts" / "statuses.sql").read_text()
    with duckdb.connect() as connection:
        return frozenset(
            row[0] for row in connection.execute(f"select status from ({sql})").fetchall()
        )


def product_files(root: Path = ROOT) -> list[Path]:
    files = [*root.glob("batchlens/**/*.py"), *root.glob("notebooks/**/*.py")]
    return sorted(path for path in files if not str(path.relative_to(root)).startswith(EXCLUDED))


def _strings(node: ast.AST) -> list[str]:
    """The string constants directly in a literal (its elements, a dict's keys and values)."""
    if isinstance(node, ast.Dict):
        items = [*node.keys, *node.values]
    else:
        items = list(getattr(node, "elts", []))
    return [
        item.value
        for item in items
        if isinstance(item, ast.Constant) and isinstance(item.value, str)
    ]


def _names(node: ast.AST) -> set[str]:
    """The words of every name an operand mentions: `row["request_failed"]`, `totals.failed`."""
    words: set[str] = set()
    for part in ast.walk(node):
        if isinstance(part, ast.Name):
            text = part.id
        elif isinstance(part, ast.Attribute):
            text = part.attr
        elif isinstance(part, ast.Constant) and isinstance(part.value, str):
            text = part.value
        else:
            continue
        words.update(re.split(r"[^a-z]+", text.lower()))
    return words


def violations(source: str, words: frozenset[str]) -> list[str]:
    """What in `source` defines a status set or a rate, one line per finding."""
    quoted = re.compile("'(" + "|".join(sorted(map(re.escape, words))) + ")'")
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict):
            named = sorted({text for text in _strings(node) if text in words})
            if len(named) >= 2:
                found.append(f"line {line}: a status set {named}; read the statuses view")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if SQL_RATE.search(node.value):
                found.append(f"line {line}: a rate in SQL (`/ nullif(`); select it from a view")
            listed = sorted(set(quoted.findall(node.value)))
            if len(listed) >= 2:
                found.append(f"line {line}: a status list in SQL {listed}; join statuses")
        elif isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.Div):
            operands = (
                (node.left, node.right)
                if isinstance(node, ast.BinOp)
                else (node.target, node.value)
            )
            if any(_names(operand) & COUNT_WORDS for operand in operands):
                found.append(f"line {line}: a rate computed in Python; select its column")
    return found


@pytest.mark.parametrize("path", product_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_rate_or_status_set_is_defined_outside_sql(path: Path) -> None:
    assert violations(path.read_text(), status_words()) == []


NOTEBOOKS = sorted(ROOT.glob("notebooks/*.ipynb"))


def notebook_code(path: Path) -> str:
    """A notebook's code cells as one Python text (IPython's `%` lines left out)."""
    import json

    cells = json.loads(path.read_text())["cells"]
    code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    lines = "\n".join(code).splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_the_notebooks_select_their_rates_and_statuses_too(path: Path) -> None:
    """The notebooks are a surface like the page: their cells select, never define."""
    assert violations(notebook_code(path), status_words()) == []


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("OPEN = ('validating', 'in_progress')", "a status set"),
        ("COLOURS = {'completed': '#009E73', 'failed': '#D55E00'}", "a status set"),
        ("Q = \"select count(*) filter (where status in ('failed', 'expired'))\"", "in SQL"),
        ('Q = f"select cast(failed as double) / nullif({x}, 0)"', "a rate in SQL"),
        ("rate = row['failed'] / row['terminal']", "in Python"),
        ("share = counts.request_failed / requests", "in Python"),
    ],
)
def test_the_guard_sees_each_kind(source: str, what: str) -> None:
    (finding,) = violations(source, status_words())
    assert what in finding


def test_the_guard_lets_columns_and_single_words_through() -> None:
    source = (
        "x = row['failure_rate']\n"
        "if status == 'failed': pass\n"
        "hours = age_s / 3600\n"
        "SHOWN = ('batch', 'account', 'status')\n"
    )
    assert violations(source, status_words()) == []


QUERIES = sorted((ROOT / "sql" / "queries").glob("*/*.sql"))


def test_the_queries_are_in_sql_and_the_views_are_not_built_from_them() -> None:
    from batchlens.views.build import discover

    assert len(QUERIES) > 30
    assert {model.path.parent.name for model in discover()} == {"staging", "marts"}


@pytest.mark.parametrize("path", QUERIES, ids=lambda path: str(path.relative_to(ROOT / "sql")))
def test_every_query_loads_and_translates_for_postgres(path: Path) -> None:
    from batchlens.storage.dialects import POSTGRES, transpile
    from batchlens.views.queries import load

    name = f"{path.parent.name}/{path.stem}"
    sql = load(name)
    assert sql == path.read_text().strip().rstrip(";")
    if path.parent.name != "demo":  # the demo writes a DuckDB file only
        assert transpile(sql, POSTGRES)
