"""New nested fields and odd values, end to end over HTTP into DuckDB, PostgreSQL, DuckLake.

The simulator's `new_fields` and `odd_types` faults alter every batch it serves; the expected
values are computed here from `sim.visible()` by the rules the faults document.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from postgres_server import postgres_bin, postgres_server

from batchlens.simulator.server import Simulator
from helpers import KEY, cli_env, run_cli

NEW_FIELD_NOTES = [
    "batchlens: note: new field request_counts.expired_n stored as column "
    "batches.request_counts__expired_n (bigint)",
    "batchlens: note: new field usage.input_tokens_details.audio_tokens stored as column "
    "batches.usage__input_tokens_details__audio_tokens (bigint)",
    "batchlens: note: new field usage.server_tools.web_search.calls stored as column "
    "batches.usage__server_tools__web_search__calls (bigint)",
    "batchlens: note: new field errors.data[].retryable stored as column "
    "batches__errors__data.retryable (bool)",
]
ODD_FIELDS = [
    "errors.data[].line",
    "request_counts.total",
    "usage.input_tokens_details.cached_tokens",
]
VIEWS = sorted(path.stem for path in (Path(__file__).parents[1] / "sql").glob("*/*.sql"))
NO_POSTGRES = postgres_bin() is None


def notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("batchlens: note:")]


def odd_note(field: str) -> str:
    return (
        f"batchlens: note: field {field} sent with a value of an unexpected type: "
        "kept as sent in unexpected_values, NULL in its typed column"
    )


class Destination:
    """One place to extract into, queried the same way whatever it is."""

    def __init__(
        self, kind: str, args: list[str], env: dict[str, str], query: Callable, cwd: Path
    ) -> None:
        self.kind, self.args, self.env, self.query, self.cwd = kind, args, env, query, cwd

    def extract(self, sim: Simulator, *more: str):
        result = run_cli("extract", *self.args, "--base-url", sim.url, *more, cwd=self.cwd,
                         env=cli_env(**self.env), timeout=280)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result

    def rows(self, sql: str) -> list[tuple]:
        return self.query(sql)[1]

    def view_columns(self) -> dict[str, list[str]]:
        return {
            view: self.query(f"select * from openai_batches.{view} limit 0")[0] for view in VIEWS
        }


def duckdb_query(db: Path) -> Callable:
    from batchlens.storage.duckdb_connection import connect

    def query(sql: str) -> tuple[list[str], list[tuple]]:
        with connect(db, read_only=True) as con:
            cursor = con.execute(sql)
            return [d[0] for d in cursor.description], cursor.fetchall()

    return query


def postgres_query(url: str) -> Callable:
    import psycopg2

    def query(sql: str) -> tuple[list[str], list[tuple]]:
        connection = psycopg2.connect(url)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return [d[0] for d in cursor.description], cursor.fetchall()
        finally:
            connection.close()

    return query


def ducklake_query(catalog: str, data: str) -> Callable:
    from batchlens.storage import ducklake_catalog as ducklake

    def query(sql: str) -> tuple[list[str], list[tuple]]:
        with ducklake.connect(catalog, data, read_only=True) as con:
            cursor = con.execute(sql)
            return [d[0] for d in cursor.description], cursor.fetchall()

    return query


@pytest.fixture(scope="module")
def server() -> Iterator[str | None]:
    if NO_POSTGRES:
        yield None
        return
    with postgres_server() as url:
        yield url


def new_database(server: str) -> str:
    import uuid

    import psycopg2

    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(server)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"create database {name}")
    admin.close()
    return server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(
    params=[
        "duckdb",
        # DuckLake's runs are the slowest of all destinations
        pytest.param("postgres", marks=pytest.mark.timeout(900)),
        pytest.param("ducklake", marks=pytest.mark.timeout(900)),
    ]
)
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> Destination:
    kind = request.param
    if kind == "duckdb":
        db = tmp_path / "batches.duckdb"
        return Destination("duckdb", ["--db", str(db)], {}, duckdb_query(db), tmp_path)
    server = request.getfixturevalue("server")  # started only for the server destinations
    if server is None:
        pytest.skip("PostgreSQL server not installed: the postgres/ducklake cases are SKIPPED")
    url = new_database(server)
    state = {"BATCHLENS_STATE_DIR": str(tmp_path / "state")}
    if kind == "postgres":
        env = {"DESTINATION__POSTGRES__CREDENTIALS": url, **state}
        return Destination(
            "postgres", ["--destination", "postgres"], env, postgres_query(url), tmp_path
        )
    data = tmp_path / "lake-data"
    data.mkdir()
    env = {
        "DESTINATION__DUCKLAKE__CREDENTIALS__CATALOG": url,
        "DESTINATION__DUCKLAKE__CREDENTIALS__STORAGE": str(data),
        **state,
    }
    return Destination(
        "ducklake", ["--destination", "ducklake"], env, ducklake_query(url, str(data)), tmp_path
    )


def as_dict(value: object) -> dict | None:
    """JSON as DuckDB (text) or PostgreSQL (jsonb, already a dict) returns it."""
    return json.loads(value) if isinstance(value, str) else value  # type: ignore[return-value]


@pytest.mark.slow  # four runs on DuckDB, three on the servers
def test_new_fields_and_odd_values_land_once_noted_views_unchanged(
    destination: Destination,
) -> None:
    with Simulator(batches=120, seed=5, api_key=KEY) as sim:
        visible = {batch["id"]: batch for batch in sim.visible()}
        first = destination.extract(sim)
        assert notes(first.stderr) == []
        views_before = destination.view_columns()

        sim.inject("new_fields")
        second = destination.extract(sim, "--full")
        assert sorted(notes(second.stderr)) == sorted(NEW_FIELD_NOTES)
        stored = destination.rows(
            "select id, request_counts__expired_n, usage__input_tokens_details__audio_tokens, "
            "usage__server_tools__web_search__calls from openai_batches.batches"
        )
        expected = set()
        for batch_id, batch in visible.items():
            counts, usage = batch["request_counts"], batch.get("usage")
            expired = counts["total"] - counts["completed"] - counts["failed"]
            audio = usage["input_tokens"] // 10 if usage else None
            expected.add((batch_id, expired, audio, 1 if usage else None))
        assert set(stored) == expected
        entries = sum(len((b.get("errors") or {}).get("data") or []) for b in visible.values())
        retryable = destination.rows("select retryable from openai_batches.batches__errors__data")
        assert entries > 0 and retryable == [(False,)] * entries

        sim.clear_faults()
        sim.inject("odd_types")
        third = destination.extract(sim, "--full")
        assert sorted(notes(third.stderr)) == [odd_note(field) for field in ODD_FIELDS]
        stored = destination.rows(
            "select id, request_counts__total, request_counts__completed, unexpected_values "
            "from openai_batches.batches"
        )
        assert len(stored) == len(visible)
        for batch_id, total, completed, kept in stored:
            batch = visible[batch_id]
            assert total is None and completed == batch["request_counts"]["completed"]
            sent = {"request_counts.total": str(batch["request_counts"]["total"])}
            if batch.get("usage"):
                cached = batch["usage"]["input_tokens_details"]["cached_tokens"]
                sent["usage.input_tokens_details.cached_tokens"] = str(cached)
            assert as_dict(kept) == sent
        lines = destination.rows(
            "select batch_id, position, line, unexpected_values "
            "from openai_batches.batches__errors__data"
        )
        for batch_id, position, line, kept in lines:
            sent = visible[batch_id]["errors"]["data"][position]["line"]
            assert line is None
            assert as_dict(kept) == (None if sent is None else {"errors.data[].line": str(sent)})

        assert destination.view_columns() == views_before
        if destination.kind != "duckdb":
            return  # the rest is the same dlt schema and state, tested where runs are cheap
        sim.clear_faults()
        sim.inject("new_fields")
        fourth = destination.extract(sim, "--full")
        assert notes(fourth.stderr) == []  # the columns exist now
        assert destination.rows(
            "select count(*) from openai_batches.batches where unexpected_values is not null"
        ) == [(0,)]  # each row is the batch as last sent


def test_odd_values_are_noted_once_across_runs(tmp_path: Path) -> None:
    db = tmp_path / "batches.duckdb"
    destination = Destination("duckdb", ["--db", str(db)], {}, duckdb_query(db), tmp_path)
    with Simulator(batches=60, seed=3, api_key=KEY) as sim:
        visible = sim.visible()
        sent = {"request_counts.total"}
        if any(batch.get("usage") for batch in visible):
            sent.add("usage.input_tokens_details.cached_tokens")
        for batch in visible:
            if any(e["line"] is not None for e in (batch.get("errors") or {}).get("data") or []):
                sent.add("errors.data[].line")
        sim.inject("odd_types")
        first = destination.extract(sim)
        assert sorted(notes(first.stderr)) == [odd_note(field) for field in sorted(sent)]
        again = destination.extract(sim, "--full")
        assert notes(again.stderr) == []
        (count,) = destination.rows(
            "select count(*) from openai_batches.batches where unexpected_values is not null"
        )
        assert count == (len(visible),)


def test_a_new_field_lands_incrementally_without_a_full_re_read(tmp_path: Path) -> None:
    db = tmp_path / "batches.duckdb"
    destination = Destination("duckdb", ["--db", str(db)], {}, duckdb_query(db), tmp_path)
    with Simulator(batches=120, seed=9, api_key=KEY) as sim:
        destination.extract(sim)
        sim.advance(3 * 86_400)
        new_ids = set(sim.add_batches(25, same_second=False))
        sim.inject("new_fields")
        sim.reset_requests()
        result = destination.extract(sim)
        assert NEW_FIELD_NOTES[0] in notes(result.stderr)
        assert sim.list_requests == 1  # one page of new batches, not the whole history
        visible = {batch["id"]: batch for batch in sim.visible()}
        stored = dict(
            destination.rows("select id, request_counts__expired_n from openai_batches.batches")
        )
    assert len(stored) == 120 + 25
    for batch_id in new_ids:
        counts = visible[batch_id]["request_counts"]
        assert stored[batch_id] == counts["total"] - counts["completed"] - counts["failed"]
    # batches not read again keep NULL until the API sends them again
    assert any(stored[i] is None for i in stored if i not in new_ids)
