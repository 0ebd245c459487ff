"""The SQL models mean the same on PostgreSQL as on DuckDB: same rows, values and types.

The same histories go through the real path twice, simulator over HTTP and dlt, into a
DuckDB file and into a PostgreSQL database (a throwaway server, `postgres_server.py`); the
models are built on both (translated by sqlglot for PostgreSQL) and every view must give
the same rows. The one input the two loads cannot share is "as of", the start of each
extraction: the DuckDB load's extraction rows are copied over the PostgreSQL ones.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from postgres_server import postgres_bin, postgres_server
from test_models_golden import API_KEY, DEFAULT, PUBLIC_VIEWS, TEAM_B, write_models

from batchlens.config import Account
from batchlens.errors import BatchlensError
from batchlens.notebooks.helper import query_df
from batchlens.report.page import page_from
from batchlens.report.terminal import collect_from, to_json
from batchlens.run.extract import run_extraction
from batchlens.simulator.server import Simulator
from batchlens.storage.dialects import POSTGRES, rows, transpile
from batchlens.storage.duckdb_connection import connect as connect_duckdb
from batchlens.storage.target import Target
from batchlens.views.build import build_models, check_models

psycopg2 = pytest.importorskip("psycopg2")

if postgres_bin() is None:
    pytest.skip(
        "SKIPPED LOUDLY: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb); "
        "the models are NOT checked on PostgreSQL. Install the `postgresql` package.",
        allow_module_level=True,
    )

# failure_rates too: its grains no view selects (day_total, since, label) are what the
# page, `check` and `report --by` read
VIEWS = sorted(PUBLIC_VIEWS | {"as_of", "model_prices", "failure_rates"})
REQUEST_FILE_VIEWS = {"request_errors", "request_error_codes_daily"}
# information_schema's type names on each side for the same type
PG_TYPES = {
    "character varying": "VARCHAR",
    "text": "VARCHAR",
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "double precision": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    "timestamp without time zone": "TIMESTAMP",
    "jsonb": "JSON",
}


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module", autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """dlt's working folders of the PostgreSQL loads: in the test's temporary folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BATCHLENS_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        yield


_databases = iter(range(1_000_000))


def new_database(server: str) -> str:
    """A fresh, empty database on the server; its URL."""
    name = f"models_{next(_databases)}"
    with contextlib.closing(psycopg2.connect(server)) as admin:
        admin.autocommit = True
        admin.cursor().execute(f"create database {name}")
    return server.rsplit("/", 1)[0] + "/" + name


def pg_connect(url: str) -> Any:
    connection = psycopg2.connect(url)
    connection.autocommit = True
    connection.cursor().execute("set time zone 'UTC'")
    return connection


@dataclass
class Pair:
    """The same history in a DuckDB file and in a PostgreSQL database."""

    db: Path
    url: str

    def duckdb(self) -> contextlib.closing[duckdb.DuckDBPyConnection]:
        connection = connect_duckdb(self.db, read_only=True)
        connection.execute("set TimeZone = 'UTC'")
        return contextlib.closing(connection)

    def postgres(self) -> contextlib.closing[Any]:
        return contextlib.closing(pg_connect(self.url))

    def build(self) -> None:
        build_models(self.db)
        with self.postgres() as connection:
            build_models(connection, dialect=POSTGRES)


def load(pair: Pair, sim: Simulator, account: str) -> None:
    credentials = Account(name=account, base_url=sim.url, api_key=API_KEY)
    run_extraction(pair.db, credentials, build_views=False)
    run_extraction(Target("postgres", "test", url=pair.url), credentials, build_views=False)


def share_as_of(pair: Pair) -> None:
    """The DuckDB load's extraction rows replace the PostgreSQL load's (see the docstring)."""
    with pair.duckdb() as source:
        cursor = source.execute("select * from openai_batches.extractions")
        names = [column[0] for column in cursor.description]
        found = cursor.fetchall()
    with pair.postgres() as target, target.cursor() as cursor:
        cursor.execute("delete from openai_batches.extractions")
        cursor.executemany(
            f"insert into openai_batches.extractions ({', '.join(names)}) "
            f"values ({', '.join(['%s'] * len(names))})",
            found,
        )


@pytest.fixture(scope="module")
def golden(server: str, tmp_path_factory: pytest.TempPathFactory) -> Pair:
    pair = Pair(tmp_path_factory.mktemp("golden") / "golden.duckdb", new_database(server))
    for history, account in ((DEFAULT, "default"), (TEAM_B, "team-b")):
        with Simulator(history=history, api_key=API_KEY) as sim:
            load(pair, sim, account)
    share_as_of(pair)
    pair.build()
    return pair


@pytest.fixture(scope="module")
def simulated(server: str, tmp_path_factory: pytest.TempPathFactory) -> Pair:
    pair = Pair(tmp_path_factory.mktemp("simulated") / "sim.duckdb", new_database(server))
    with Simulator(batches=1_500, seed=7, api_key=API_KEY) as sim:
        load(pair, sim, "default")
    share_as_of(pair)
    pair.build()
    return pair


# --- comparison ---------------------------------------------------------------------------


def view(connection: Any, dialect: str, name: str) -> tuple[list[str], list[tuple]]:
    names, found = rows(connection, dialect, f"select * from openai_batches.{name}")
    normalized = [
        tuple(_json(column, _utc(value)) for column, value in zip(names, row, strict=True))
        for row in found
    ]
    # views promise no order; floats may differ in their last bits, so they do not sort
    return names, sorted(normalized, key=lambda row: [_sort_key(value) for value in row])


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _json(column: str, value: Any) -> Any:
    """`metadata` is JSON: DuckDB hands over its text, psycopg2 the parsed value (jsonb
    orders keys its own way): both compared as the same canonical text."""
    if column != "metadata" or value is None:
        return value
    return json.dumps(json.loads(value) if isinstance(value, str) else value, sort_keys=True)


def _sort_key(value: Any) -> str:
    return "" if isinstance(value, float) or value is None else f"{type(value).__name__}:{value}"


def assert_same(duck: Any, pg: Any, where: str) -> None:
    """Equal, floats to 1e-9 relative, and of the same Python type (no Decimal for a DOUBLE)."""
    if isinstance(duck, float) and isinstance(pg, float):
        assert math.isclose(duck, pg, rel_tol=1e-9, abs_tol=1e-9), (where, duck, pg)
        return
    assert type(duck) is type(pg), (where, duck, pg)
    if isinstance(duck, dict):
        assert list(duck) == list(pg), where
        for key in duck:
            assert_same(duck[key], pg[key], f"{where}.{key}")
    elif isinstance(duck, list | tuple):
        assert len(duck) == len(pg), (where, len(duck), len(pg))
        for index, (a, b) in enumerate(zip(duck, pg, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    else:
        assert duck == pg, (where, duck, pg)


def assert_views_agree(pair: Pair, name: str) -> int:
    with pair.duckdb() as duck, pair.postgres() as pg:
        duck_names, duck_rows = view(duck, "duckdb", name)
        pg_names, pg_rows = view(pg, POSTGRES, name)
    assert pg_names == duck_names
    assert_same(duck_rows, pg_rows, name)
    return len(duck_rows)


# --- the same answers ---------------------------------------------------------------------


@pytest.mark.parametrize("name", VIEWS)
def test_golden_views_are_the_same_on_both(golden: Pair, name: str) -> None:
    rows = assert_views_agree(golden, name)
    # literal histories have no files to serve: the request views are empty there (and
    # compared with rows in the simulated history below)
    assert rows > 0 or name in REQUEST_FILE_VIEWS


# make test compares the golden history's views on both; the simulated history's (a
# minute of queries) runs in CI's slow part, with the page's
@pytest.mark.slow
@pytest.mark.parametrize("name", VIEWS)
def test_simulated_views_are_the_same_on_both(simulated: Pair, name: str) -> None:
    assert assert_views_agree(simulated, name) > 0


def test_column_types_are_the_same_on_both(golden: Pair) -> None:
    sql = (
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'openai_batches' order by table_name, ordinal_position"
    )
    with golden.duckdb() as duck, golden.postgres() as pg:
        duck_types = {(t, c): kind for t, c, kind in rows(duck, "duckdb", sql)[1]}
        pg_types = {(t, c): PG_TYPES.get(kind, kind) for t, c, kind in rows(pg, POSTGRES, sql)[1]}
    for name in VIEWS:
        duck_view = {key: kind for key, kind in duck_types.items() if key[0] == name}
        assert duck_view == {key: pg_types.get(key) for key in duck_view}, name


@pytest.mark.parametrize("days", [30, 3_650])  # 10 years: every golden batch is in it
def test_report_is_the_same_on_both(golden: Pair, simulated: Pair, days: int) -> None:
    for pair in (golden, simulated):
        with pair.duckdb() as duck, pair.postgres() as pg:
            duck_report = json.loads(to_json(collect_from(duck, "duckdb", days, "db")))
            pg_report = json.loads(to_json(collect_from(pg, POSTGRES, days, "db")))
        assert_same(duck_report, pg_report, "report")
        assert pg_report["open_batches"]["batches"] and pg_report["active"]
        assert (pg_report["durations"] and pg_report["error_codes"]) or days == 30


def test_report_by_label_is_the_same_on_both(golden: Pair, simulated: Pair) -> None:
    """`--by metadata.KEY`: the label grain (json_each on both) for a key some batches
    carry, and for a key none does (every batch in one group)."""
    for pair in (golden, simulated):
        for key in ("metadata.owner", "metadata.nobody_sets_this"):
            with pair.duckdb() as duck, pair.postgres() as pg:
                duck_by = json.loads(to_json(collect_from(duck, "duckdb", 3_650, "db", key)))
                pg_by = json.loads(to_json(collect_from(pg, POSTGRES, 3_650, "db", key)))
            assert_same(duck_by["by"], pg_by["by"], key)
            assert any(row["failure_rate"] is not None for row in pg_by["by"]["rows"]), key


def test_views_do_not_depend_on_the_session_time_zone(golden: Pair) -> None:
    with golden.postgres() as pg:
        utc = {name: view(pg, POSTGRES, name) for name in VIEWS}
        pg.cursor().execute("set time zone 'Pacific/Kiritimati'")  # UTC+14: other dates
        assert {name: view(pg, POSTGRES, name) for name in VIEWS} == utc


def test_notebook_frames_are_typed_as_on_duckdb(golden: Pair) -> None:
    sql = "select * from openai_batches.batch_facts order by account, batch_id"
    with golden.duckdb() as duck, golden.postgres() as pg:
        duck_frame = query_df(duck, "duckdb", sql)
        pg_frame = query_df(pg, POSTGRES, sql)
    assert dict(pg_frame.dtypes.astype(str)) == dict(duck_frame.dtypes.astype(str))
    assert pg_frame.equals(duck_frame)


def test_costs_are_the_same_on_both(server: str, tmp_path: Path) -> None:
    """test_costs.py's hand-worked history: price periods, unpriced, embeddings, no usage."""
    from test_costs import HISTORY

    pair = Pair(tmp_path / "costs.duckdb", new_database(server))
    with Simulator(history=HISTORY, api_key=API_KEY) as sim:
        load(pair, sim, "default")
    share_as_of(pair)
    pair.build()
    for name in ("model_prices", "batch_costs", "costs_daily", "batch_facts"):
        assert assert_views_agree(pair, name) > 0, name
    with pair.postgres() as pg:
        _, found = rows(pg, POSTGRES, "select count(*) from openai_batches.model_prices")
    assert found == [(5,)]  # o3 twice, gpt-4o-mini, o4-mini, embeddings; not the fine-tuned


# --- building ------------------------------------------------------------------------------


def test_views_on_a_table_loaded_before_columns_existed(server: str) -> None:
    """As in test_models_golden: no model, usage or request counts columns yet."""
    with contextlib.closing(pg_connect(new_database(server))) as pg, pg.cursor() as cursor:
        cursor.execute("create schema openai_batches")
        cursor.execute(
            "create table openai_batches.batches as select 'batch_1' as id, "
            "'default' as account, 'completed' as status, '/v1/embeddings' as endpoint, "
            "'24h' as completion_window, "
            "timestamptz '2026-01-01 00:00:00+00' as created_at, "
            "timestamptz '2026-01-01 00:10:00+00' as in_progress_at, "
            "timestamptz '2026-01-01 01:10:00+00' as completed_at, "
            "timestamptz '2026-01-02 00:00:00+00' as expires_at"
        )
        build_models(pg, dialect=POSTGRES)
        cursor.execute(
            "select model, duration_s, request_total, total_tokens, error_count "
            "from openai_batches.batch_facts"
        )
        assert cursor.fetchall() == [(None, 3600.0, None, None, 0)]
        cursor.execute(
            "select terminal, completed, request_total, request_failure_rate "
            "from openai_batches.failure_rates_daily"
        )
        assert cursor.fetchall() == [(1, 1, 0, None)]


def test_views_on_an_account_without_any_batch(server: str, tmp_path: Path) -> None:
    """No `batches` table at all: the views read typed empty relations."""
    pair = Pair(tmp_path / "empty.duckdb", new_database(server))
    with Simulator(history=[], api_key=API_KEY) as sim:
        load(pair, sim, "default")
    share_as_of(pair)
    pair.build()
    for name in VIEWS:
        assert_views_agree(pair, name)


def test_a_rebuild_replaces_views_whose_columns_changed(golden: Pair, tmp_path: Path) -> None:
    root = write_models(tmp_path / "sql", {"marts/batch_facts.sql": "select 1 as answer"})
    with golden.postgres() as pg:
        try:
            build_models(pg, root, dialect=POSTGRES)
            assert rows(pg, POSTGRES, "select * from openai_batches.batch_facts") == (
                ["answer"],
                [(1,)],
            )
        finally:
            build_models(pg, dialect=POSTGRES)  # the real models again, columns and all
        assert len(rows(pg, POSTGRES, "select * from openai_batches.open_batches")[1]) > 0


def test_a_broken_model_leaves_the_previous_views_in_place(golden: Pair, tmp_path: Path) -> None:
    root = write_models(
        tmp_path / "sql",
        {
            "staging/stg_batches.sql": "select 1 as batch_id",
            "marts/batch_facts.sql": "select * from openai_batches.no_such_table",
        },
    )
    with golden.postgres() as pg:
        before = {name: view(pg, POSTGRES, name) for name in VIEWS}
        with pytest.raises(BatchlensError, match="batch_facts"):
            build_models(pg, root, dialect=POSTGRES)
        assert {name: view(pg, POSTGRES, name) for name in VIEWS} == before
        assert len(rows(pg, POSTGRES, "select * from openai_batches.stg_batches")[0]) > 1


# --- the translation ------------------------------------------------------------------------


def test_group_by_all_and_round_are_translated() -> None:
    sql = transpile(
        "select day, status, count(*) as n, round(100.0 * sum(a) / 3, 1) as r from t group by all",
        POSTGRES,
    )
    assert "GROUP BY 1, 2" in sql
    assert "ROUND(CAST(" in sql


def test_percent_signs_survive_parameters(golden: Pair) -> None:
    sql = "select 7 % 3 as remainder, 'a%' like 'a%' as matches, $n + 1 as next"
    with golden.postgres() as pg:
        assert rows(pg, POSTGRES, sql, {"n": 1})[1] == [(1, True, 2)]


# in CI's slow part: the page's charts on both take 10 s at 30 days, half a minute at 10 years
@pytest.mark.slow
@pytest.mark.parametrize("days", [30, 3_650])
def test_html_page_is_the_same_on_both(golden: Pair, simulated: Pair, days: int) -> None:
    """The page's every table and chart, byte for byte (the charts are drawn from the rows)."""
    for pair in (golden, simulated):
        with pair.duckdb() as duck, pair.postgres() as pg:
            duck_page = page_from(duck, "duckdb", "db", days)
            pg_page = page_from(pg, POSTGRES, "db", days)
        assert pg_page == duck_page
        assert pg_page.count("<svg") >= (4 if days == 3_650 else 1)


def test_html_page_charts_other_views_the_same_on_both(golden: Pair) -> None:
    """request_error_codes_daily and costs_daily (other issues' views), made by hand on both."""
    rows_ = [
        f"select date '2025-12-{day:02d}' as day, 'default' as account, '/v1/x' as endpoint, "
        f"'m{n % 3}' as model, 'code_{n:02d}' as error_code, {n * 7 + day} as requests, "
        f"{n + 1.25 * day} as cost_usd"
        for n in range(11)
        for day in (1, 2, 5)
    ]
    views = {
        "request_error_codes_daily": "select day, account, endpoint, model, error_code, "
        "requests, 1 as batches, 'message' as example_message",
        "costs_daily": "select day, account, endpoint, model, cost_usd, cost_usd as saved_usd, "
        "1 as priced_batches, 0 as unpriced_batches",
    }
    create, drop = [], []
    for name, columns in views.items():
        # The real view, where the branch that adds it has landed, steps aside meanwhile.
        create.append(f"alter view if exists openai_batches.{name} rename to {name}_kept")
        create.append(
            f"create view openai_batches.{name} as {columns} "
            f"from ({' union all '.join(rows_)}) as t"
        )
        drop.append(f"drop view openai_batches.{name}")
        drop.append(f"alter view if exists openai_batches.{name}_kept rename to {name}")
    with contextlib.closing(connect_duckdb(golden.db)) as duck, golden.postgres() as pg:
        for sql in create:
            duck.execute(sql)
            pg.cursor().execute(sql)
        try:
            duck_page = page_from(duck, "duckdb", "db", 3_650)
            pg_page = page_from(pg, POSTGRES, "db", 3_650)
        finally:
            for sql in drop:
                duck.execute(sql)
                pg.cursor().execute(sql)
    assert 'data-chart="error_codes_daily"><svg' in pg_page
    assert 'data-chart="costs_daily"><svg' in pg_page
    assert pg_page == duck_page


def test_the_docs_query_by_metadata_runs_verbatim_on_both(golden: Pair) -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "sql.md").read_text()
    match = re.search(r"```sql\n(-- batches and failure rate per owner.*?)```", page, re.S)
    assert match, "docs/sql.md's metadata example is gone"
    with golden.duckdb() as duck, golden.postgres() as pg:
        duck_rows = duck.execute(match[1]).fetchall()
        with pg.cursor() as cursor:
            cursor.execute(match[1])
            pg_rows = cursor.fetchall()
    assert {row[0] for row in duck_rows} == {"ana", "ben"}
    assert_same(sorted(duck_rows, key=str), sorted(map(tuple, pg_rows), key=str), "readme")


def test_the_views_check_leaves_no_transaction_open(golden: Pair) -> None:
    """An extraction's connection is outside autocommit; a read the check left in an open
    transaction held its lock, and dlt's `alter table` for a new field waited forever."""
    golden.build()
    with contextlib.closing(psycopg2.connect(golden.url)) as pg:
        check_models(pg, dialect=POSTGRES)  # unchanged since the build: only reads
        assert pg.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        with golden.postgres() as other, other.cursor() as cursor:
            cursor.execute("set lock_timeout = '2s'")
            cursor.execute("alter table openai_batches.batches add column probe_x text")
            cursor.execute("alter table openai_batches.batches drop column probe_x")
