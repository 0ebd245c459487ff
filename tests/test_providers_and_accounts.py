"""Providers that are not OpenAI-shaped behind a gateway, and several accounts in one history."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest

from batchlens.simulator.server import Simulator
from helpers import (
    KEY,
    assert_matches_history,
    cli_env,
    expected_batches,
    extract,
    run_cli,
    stored_batches,
    summary,
)

# Written out independently of the loader's alias table: provider word -> OpenAI status.
EXPECTED_STATUS = {
    "bedrock": {
        "submitted": "validating",
        "in_progress": "in_progress",
        "completed": "completed",
        "failed": "failed",
        "expired": "expired",
        "stopping": "cancelling",
        "stopped": "cancelled",
    },
    "cohere": {
        "processing": "in_progress",
        "complete": "completed",
        "failed": "failed",
        "cancelling": "cancelling",
        "cancelled": "cancelled",
    },
    "vertex": {
        "JOB_STATE_QUEUED": "validating",
        "JOB_STATE_RUNNING": "in_progress",
        "JOB_STATE_SUCCEEDED": "completed",
        "JOB_STATE_FAILED": "failed",
        "JOB_STATE_EXPIRED": "expired",
        "JOB_STATE_CANCELLING": "cancelling",
        "JOB_STATE_CANCELLED": "cancelled",
    },
}


def provider_view(sim: Simulator) -> dict[str, str]:
    """id -> the raw status word the provider shows, read over HTTP like a client would."""
    import requests

    body = requests.get(
        f"{sim.url}/batches", params={"limit": 100}, headers={"Authorization": f"Bearer {KEY}"}
    ).json()
    words = {b["id"]: b["status"] for b in body["data"]}
    while body.get("has_more"):
        body = requests.get(
            f"{sim.url}/batches",
            params={"limit": 100, "after": body["last_id"]},
            headers={"Authorization": f"Bearer {KEY}"},
        ).json()
        words.update({b["id"]: b["status"] for b in body["data"]})
    return words


def assert_matches_provider(db: Path, sim: Simulator, shape: str) -> None:
    stored = stored_batches(db)
    expected = expected_batches(sim.visible())
    words = provider_view(sim)
    assert stored.keys() == expected.keys() == words.keys()
    with duckdb.connect(str(db), read_only=True) as con:
        raw = dict(con.execute("select id, status_raw from openai_batches.batches").fetchall())
    for batch_id, row in expected.items():
        row = {**row, "status": EXPECTED_STATUS[shape][words[batch_id]]}
        assert stored[batch_id] == row, batch_id
        assert raw[batch_id] == words[batch_id]


@pytest.mark.parametrize(("shape", "pages"), [("bedrock", 1), ("cohere", 1), ("vertex", 3)])
def test_provider_shapes_load_completely(tmp_path: Path, shape: str, pages: int) -> None:
    with Simulator(batches=250, seed=3, api_key=KEY, shape=shape) as sim:
        db = tmp_path / f"{shape}.duckdb"
        result = extract(sim, db, "--provider", shape)
        assert result.returncode == 0, result.stderr
        assert sim.list_requests == pages == math.ceil(250 / 100) ** (shape == "vertex")
        assert_matches_provider(db, sim, shape)
        # later: the clock moves, new batches arrive; the single page still ends the run
        sim.advance(3 * 86400)
        sim.add_batches(20, same_second=True)
        sim.reset_requests()
        result = extract(sim, db, "--provider", shape)
        assert result.returncode == 0, result.stderr
        assert summary(result)["new"] == 20
        assert_matches_provider(db, sim, shape)


def test_an_unknown_status_loads_with_a_warning_and_stays_open(tmp_path: Path) -> None:
    batch = {
        "id": "batch_odd",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "status": "PausedByAdmin",
        "created_at": 1_767_000_000,
    }
    with Simulator(history=[batch], api_key=KEY) as sim:
        db = tmp_path / "odd.duckdb"
        result = extract(sim, db)
        assert result.returncode == 0, result.stderr
        assert (
            "batchlens: warning: account default: unknown status paused_by_admin" in result.stderr
        )
        assert summary(result)["still_open"] == 1
        sim.reset_requests()
        assert extract(sim, db).returncode == 0
        assert sim.retrieve_requests == 0 and sim.list_requests == 1  # met on the first page
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select status, status_raw from openai_batches.batches").fetchall() == [
            ("paused_by_admin", "PausedByAdmin")
        ]


def write_accounts(folder: Path, alpha: Simulator, beta: Simulator) -> None:
    (folder / ".dlt").mkdir()
    (folder / ".dlt" / "config.toml").write_text(
        f"""
[sources.openai_batches.accounts.alpha]
base_url = "{alpha.url}"
headers = {{ "OpenAI-Project" = "proj_alpha" }}

[sources.openai_batches.accounts.beta]
base_url = "{beta.url}"
api_key_env = "BETA_KEY"
"""
    )
    (folder / ".dlt" / "secrets.toml").write_text(
        f'[sources.openai_batches.accounts.alpha]\napi_key = "{KEY}"\n'
    )


def test_several_accounts_load_into_one_table_and_stay_apart(tmp_path: Path) -> None:
    with (
        Simulator(batches=230, seed=21, api_key=KEY) as alpha,
        Simulator(batches=120, seed=22, api_key="sk-beta-CANARY-key-000") as beta,
    ):
        write_accounts(tmp_path, alpha, beta)
        env = cli_env(BETA_KEY="sk-beta-CANARY-key-000")
        result = run_cli("extract", "--db", "h.duckdb", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        lines = [line for line in result.stdout.splitlines() if line.startswith("batchlens")]
        assert [line.split()[2] for line in lines] == ["account=alpha", "account=beta"]
        assert_matches_history(tmp_path / "h.duckdb", alpha, account="alpha")
        assert_matches_history(tmp_path / "h.duckdb", beta, account="beta")
        # the views keep the accounts apart
        with duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True) as con:
            active = dict(
                con.execute(
                    "select account, sum(batches) from openai_batches.active_batches "
                    "where status in ('validating', 'in_progress', 'finalizing') group by 1"
                ).fetchall()
            )
            per_account = {
                view: dict(
                    con.execute(
                        f"select account, {measure} from openai_batches.{view} group by 1"
                    ).fetchall()
                )
                for view, measure in (
                    ("batch_facts", "count(*)"),
                    ("failure_rates_daily", "sum(terminal)"),
                    ("open_batches", "count(*)"),
                    ("batch_errors", "count(*)"),
                )
            }
        terminal = ("completed", "failed", "expired", "cancelled")
        for name, sim in (("alpha", alpha), ("beta", beta)):
            visible = sim.visible()
            expected = sum(
                b["status"] in ("validating", "in_progress", "finalizing") for b in visible
            )
            assert active[name] == expected
            assert per_account["batch_facts"][name] == len(visible)
            assert per_account["failure_rates_daily"][name] == sum(
                b["status"] in terminal for b in visible
            )
            assert per_account["open_batches"][name] == sum(
                b["status"] not in terminal for b in visible
            )
            assert per_account["batch_errors"][name] == sum(
                len((b.get("errors") or {}).get("data") or []) for b in visible
            )

        # each account keeps its own incremental state
        alpha.advance(86400)
        alpha.add_batches(7)
        alpha.reset_requests()
        beta.reset_requests()
        result = run_cli("extract", "--db", "h.duckdb", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert "account=alpha pages=1" in result.stdout and "new=7" in result.stdout
        assert beta.list_requests == 1
        assert_matches_history(tmp_path / "h.duckdb", alpha, account="alpha")


def test_one_failing_account_does_not_lose_the_others(tmp_path: Path) -> None:
    with (
        Simulator(batches=150, seed=31, api_key=KEY) as alpha,
        Simulator(batches=90, seed=32, api_key="sk-beta-right-key-000") as beta,
    ):
        write_accounts(tmp_path, alpha, beta)
        env = cli_env(BETA_KEY="sk-beta-WRONG-CANARY-000")
        result = run_cli("extract", "--db", "h.duckdb", cwd=tmp_path, env=env)
        assert result.returncode == 4
        assert "account=beta failed exit=4" in result.stdout
        assert "batchlens: account beta:" in result.stderr and "HTTP 401" in result.stderr
        assert "sk-beta-WRONG-CANARY-000" not in result.stdout + result.stderr
        assert_matches_history(tmp_path / "h.duckdb", alpha, account="alpha")
        assert stored_batches(tmp_path / "h.duckdb", "beta") == {}
        # fixed key: beta loads completely, alpha only checks for news
        alpha.reset_requests()
        env = cli_env(BETA_KEY="sk-beta-right-key-000")
        result = run_cli("extract", "--db", "h.duckdb", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert alpha.list_requests == 1
        assert_matches_history(tmp_path / "h.duckdb", beta, account="beta")
