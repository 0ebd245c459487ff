"""`batchlens check --destination postgres`: the same rules over the translated queries."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from postgres_server import PASSWORD, postgres_bin, postgres_server
from test_check import HOUR, Run, error_files_due, expiring, overdue, stuck

from batchlens import cli
from batchlens.config import Account
from batchlens.run.extract import run_extraction
from batchlens.simulator.server import Simulator
from batchlens.storage.target import Target
from helpers import KEY

pytestmark = pytest.mark.skipif(
    postgres_bin() is None,
    reason="PostgreSQL server not installed (apt-get install postgresql): "
    "check on PostgreSQL is SKIPPED",
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def pg(url: str, *statements: str, params: dict | None = None) -> list[tuple]:
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("set time zone 'UTC'")
            for statement in statements:
                cursor.execute(statement, params)
            found = cursor.fetchall() if cursor.description else []
        connection.commit()
        return found
    finally:
        connection.close()


def test_check_on_postgres(
    server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import psycopg2

    name = f"check_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(server)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"create database {name}")
    admin.close()
    url = server.rsplit("/", 1)[0] + f"/{name}"
    monkeypatch.setenv("BATCHLENS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", url)
    monkeypatch.setattr(cli.signal, "signal", lambda *_: None)
    monkeypatch.setattr(cli, "_log_warnings_to_stderr", lambda: None)

    target = Target("postgres", label="postgres", url=url)
    with Simulator(batches=700, seed=29, now=int(time.time()) - 10, api_key=KEY) as sim:
        run_extraction(target, Account(name="default", base_url=sim.url, api_key=KEY))
        visible = sim.visible()
    ((as_of,),) = pg(url, "select max(started_at) from openai_batches.extractions")
    as_of_s = as_of.timestamp()
    due = error_files_due(visible, as_of_s)
    pg(
        url,
        # hand-made stand-ins for the request files' ledger and the costs, known values
        "drop view if exists openai_batches.stg_batch_files cascade",
        "drop table if exists openai_batches.batch_files cascade",
        "drop view if exists openai_batches.costs_daily cascade",
        "create table openai_batches.batch_files (account text, file_id text, batch_id text, "
        "kind text, state text, lines bigint, bytes bigint, loaded_at timestamptz)",
        "create table openai_batches.costs_daily (day date, account text, endpoint text, "
        "model text, cost_usd double precision)",
        "insert into openai_batches.costs_daily values "
        "(%(today)s, 'default', '/v1/responses', 'gpt-5', 12.5), "
        "(%(today)s, 'default', '/v1/responses', 'gpt-5-mini', 0.25)",
        params={"today": as_of.astimezone(UTC).date()},
    )

    def check(*args: str) -> Run:
        capsys.readouterr()
        code = cli.main(["check", "--destination", "postgres", *args])
        out, err = capsys.readouterr()
        assert PASSWORD not in out + err and KEY not in out + err
        return Run(code, out, err)

    result = check("--format", "json", "--stuck-hours", "10", "--expiring-hours", "5",
                   "--max-daily-cost", "12")  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads(result.stdout)
    found = report["findings"]

    def ids(rule: str) -> set[str]:
        return {f["batch_id"] for f in found if f["rule"] == rule}

    assert ids("stuck") == stuck(visible, as_of_s, 10) != set()
    assert ids("overdue") == overdue(visible, as_of_s)
    assert ids("expiring") == expiring(visible, as_of_s, 5)
    assert ids("error_file_expiring") == set(due)
    (cost,) = [f for f in found if f["rule"] == "daily_cost"]
    assert cost["value"] == pytest.approx(12.75)
    assert report["as_of"] == as_of.astimezone(UTC).isoformat()
    assert datetime.fromisoformat(report["checked_at"]).timestamp() - as_of_s < 2 * HOUR

    text = check("--stuck-hours", "10")
    assert text.stdout.startswith("BATCHLENS CRITICAL - ")
    assert "db=" not in text.stdout  # the server is named nowhere it need not be

    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", url.replace(PASSWORD, "wrong"))
    refused = check()
    assert refused.returncode == 3 and refused.stdout.startswith("BATCHLENS UNKNOWN - ")
