"""What batches cost: hand-worked costs over the real path (simulator, dlt, DuckDB).

Every expected cost below is worked out by hand in a comment, from the prices genai-prices
0.2.3 lists for the model (read from its catalogue, written here as literals) or from an
override file with round numbers. A batch pays `batch_discount` (0.5) of the standard
price: cost = 0.5 * ((input - cached) * input_mtok + cached * cached_input_mtok
+ output * output_mtok) / 1e6.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from test_models_golden import batch, extract

from batchlens.errors import UsageError
from batchlens.report.terminal import report
from batchlens.simulator.history import FINE_TUNED_MODEL
from batchlens.simulator.server import Simulator
from batchlens.storage.duckdb_connection import connect
from batchlens.storage.target import Target
from batchlens.views.build import build_models, sql_dir
from batchlens.views.price_list import prices_report
from batchlens.views.prices import read_overrides
from helpers import KEY, cli_env, run_cli

HOUR, DAY = 3_600, 86_400
T0 = calendar.timegm((2025, 6, 1, 0, 0, 0))
O3_CHANGE = calendar.timegm((2025, 6, 10, 0, 0, 0))  # genai-prices: o3 from $10/$40 to $2/$8
CATALOGUE = "genai-prices 0.2.3"


def with_usage(
    batch_id: str,
    model: str | None,
    created_at: int,
    input_tokens: int,
    cached: int,
    output: int,
    reasoning: int = 0,
    endpoint: str = "/v1/chat/completions",
) -> dict[str, Any]:
    obj = batch(batch_id, "completed", created_at, endpoint=endpoint, model=model,
                counts=(10, 10, 0), in_progress=60, finalizing=600, completed=900)  # fmt: skip
    obj["usage"] = {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output,
    }
    return obj


HISTORY = [
    # cached-heavy: 80 % of the input from the cache
    with_usage("batch_cached", "gpt-4o-mini", T0, 2_000_000, 1_600_000, 200_000),
    # a reasoning model: 40k of the 50k output tokens are reasoning, billed as output
    with_usage("batch_reasoning", "o4-mini", T0 + HOUR, 100_000, 0, 50_000, reasoning=40_000),
    # embeddings: input only
    with_usage(
        "batch_embeddings",
        "text-embedding-3-small",
        T0 + 2 * HOUR,
        5_000_000,
        0,
        0,
        endpoint="/v1/embeddings",
    ),
    # completed without usage (usage: null): cost unknown
    batch(
        "batch_no_usage",
        "completed",
        T0 + 3 * HOUR,
        counts=(10, 10, 0),
        in_progress=60,
        finalizing=600,
        completed=900,
    ),
    # a fine-tuned model no catalogue knows
    with_usage("batch_fine_tuned", FINE_TUNED_MODEL, T0 + 4 * HOUR, 1_000_000, 500_000, 100_000),
    # o3's price changed on 2025-06-10 (UTC): one batch the hour before, one the hour after
    with_usage("batch_o3_before", "o3", O3_CHANGE - HOUR, 1_000_000, 0, 100_000),
    with_usage("batch_o3_after", "o3", O3_CHANGE + HOUR, 1_000_000, 0, 100_000),
    # usage but no model (a gateway that drops it): unpriced, in the NULL-model group
    with_usage("batch_no_model", None, T0 + 5 * HOUR, 30_000, 0, 3_000),
]


def table(db: Path, sql: str) -> list[dict[str, Any]]:
    with contextlib.closing(connect(db, read_only=True)) as connection:
        cursor = connection.execute(sql)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def costs(db: Path) -> dict[str, dict[str, Any]]:
    rows = table(db, "select * from openai_batches.batch_costs")
    return {row["batch_id"]: row for row in rows}


@pytest.fixture(scope="module")
def golden_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("costs") / "costs.duckdb"
    extract(db, HISTORY)  # builds the models with the catalogue's prices
    return db


def test_cached_heavy_batch(golden_db: Path) -> None:
    # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million tokens
    # standard = (400,000 * 0.15 + 1,600,000 * 0.075 + 200,000 * 0.60) / 1e6
    #          = (60,000 + 120,000 + 120,000) / 1e6 = 0.30; batch pays half: 0.15
    row = costs(golden_db)["batch_cached"]
    assert row["cost_usd"] == pytest.approx(0.15)
    assert row["standard_cost_usd"] == pytest.approx(0.30)
    assert row["saved_usd"] == pytest.approx(0.15)
    assert (row["input_tokens"], row["cached_tokens"], row["output_tokens"]) == (
        2_000_000,
        1_600_000,
        200_000,
    )
    assert row["is_priced"] and row["price_source"] == CATALOGUE
    assert row["usage_source"] == "batch" and row["created_day"] == date(2025, 6, 1)


def test_reasoning_model(golden_db: Path) -> None:
    # o4-mini: $1.10 input, $4.40 output; reasoning tokens are inside the 50,000 output
    # standard = (100,000 * 1.10 + 50,000 * 4.40) / 1e6 = (110,000 + 220,000) / 1e6 = 0.33
    row = costs(golden_db)["batch_reasoning"]
    assert row["standard_cost_usd"] == pytest.approx(0.33)
    assert row["cost_usd"] == pytest.approx(0.165)


def test_embeddings_batch(golden_db: Path) -> None:
    # text-embedding-3-small: $0.02 input, no output: 5,000,000 * 0.02 / 1e6 = 0.10
    row = costs(golden_db)["batch_embeddings"]
    assert row["standard_cost_usd"] == pytest.approx(0.10)
    assert row["cost_usd"] == pytest.approx(0.05)


def test_a_batch_without_usage_has_no_cost(golden_db: Path) -> None:
    assert "batch_no_usage" not in costs(golden_db)
    (fact,) = table(
        golden_db,
        "select cost_usd from openai_batches.batch_facts where batch_id = 'batch_no_usage'",
    )
    assert fact["cost_usd"] is None


def test_a_model_without_a_price_is_unpriced_not_free(golden_db: Path) -> None:
    row = costs(golden_db)["batch_fine_tuned"]
    assert row["is_priced"] is False
    assert row["cost_usd"] is None and row["saved_usd"] is None and row["price_source"] is None
    assert row["input_tokens"] == 1_000_000
    prices = table(golden_db, "select model from openai_batches.model_prices")
    assert FINE_TUNED_MODEL not in {row["model"] for row in prices}


def test_the_price_valid_on_the_creation_day(golden_db: Path) -> None:
    # o3 in genai-prices: $10 input, $0.50 cached, $40 output; from 2025-06-10 $2 / $0.50 / $8
    prices = table(
        golden_db,
        "select valid_from, input_mtok, cached_input_mtok, output_mtok, batch_discount, source "
        "from openai_batches.model_prices where model = 'o3' order by valid_from nulls first",
    )
    assert [tuple(row.values()) for row in prices] == [
        (None, 10.0, 0.5, 40.0, 0.5, CATALOGUE),
        (date(2025, 6, 10), 2.0, 0.5, 8.0, 0.5, CATALOGUE),
    ]
    got = costs(golden_db)
    # before: (1,000,000 * 10 + 100,000 * 40) / 1e6 = 14.0, half: 7.0
    assert got["batch_o3_before"]["cost_usd"] == pytest.approx(7.0)
    # after: (1,000,000 * 2 + 100,000 * 8) / 1e6 = 2.8, half: 1.4
    assert got["batch_o3_after"]["cost_usd"] == pytest.approx(1.4)


def test_costs_daily_adds_up_and_keeps_the_unpriced_apart(golden_db: Path) -> None:
    rows = table(
        golden_db,
        "select * from openai_batches.costs_daily where day = date '2025-06-01' "
        "and endpoint = '/v1/chat/completions'",
    )
    by_model = {row["model"]: row for row in rows}
    mini = by_model["gpt-4o-mini"]  # batch_cached and batch_no_usage
    assert (mini["batches"], mini["priced_batches"], mini["unpriced_batches"]) == (2, 1, 0)
    assert mini["batches_without_usage"] == 1
    assert mini["cost_usd"] == pytest.approx(0.15)
    tuned = by_model[FINE_TUNED_MODEL]
    assert (tuned["batches"], tuned["priced_batches"], tuned["unpriced_batches"]) == (1, 0, 1)
    assert tuned["cost_usd"] is None and tuned["input_tokens"] == 1_000_000
    # the finance question of the issue: spend and savings by model
    total = table(
        golden_db,
        "select sum(cost_usd) as cost, sum(saved_usd) as saved from openai_batches.costs_daily",
    )[0]
    # 0.15 + 0.165 + 0.05 + 7.0 + 1.4 = 8.765, saved the same (half price)
    assert total["cost"] == pytest.approx(8.765)
    assert total["saved"] == pytest.approx(8.765)


def test_costs_daily_is_the_sum_over_each_batch_and_its_cost(golden_db: Path) -> None:
    """The view groups first and joins the groups; here every batch meets its cost first."""
    per_batch = table(
        golden_db,
        """
        select
            life.created_day as day, life.account, life.endpoint, life.model,
            count(*) as batches,
            count(*) filter (where costs.is_priced) as priced_batches,
            count(*) filter (where not costs.is_priced) as unpriced_batches,
            count(*) filter (where costs.batch_id is null) as batches_without_usage,
            cast(coalesce(sum(costs.input_tokens), 0) as bigint) as input_tokens,
            cast(coalesce(sum(costs.cached_tokens), 0) as bigint) as cached_tokens,
            cast(coalesce(sum(costs.output_tokens), 0) as bigint) as output_tokens,
            sum(costs.cost_usd) as cost_usd,
            sum(costs.standard_cost_usd) as standard_cost_usd,
            sum(costs.saved_usd) as saved_usd
        from openai_batches.batch_lifecycle as life
        left join openai_batches.batch_costs as costs
            on life.account = costs.account and life.batch_id = costs.batch_id
        group by all
        """,
    )
    view = table(golden_db, "select * from openai_batches.costs_daily")

    def key(row: dict[str, Any]) -> tuple:
        return tuple(str(row[name]) for name in ("day", "account", "endpoint", "model"))

    assert any(row["model"] is None and row["unpriced_batches"] for row in view)
    assert sorted(view, key=key) == sorted(per_batch, key=key)


# --- the override file ----------------------------------------------------------------------

OVERRIDES = """model,input_mtok,cached_input_mtok,output_mtok,valid_from
gpt-4o-mini,1,,2,
ft:gpt-4o-mini:acme::abc123,3,1.5,12,
"""


@pytest.mark.slow  # seven CLI runs
def test_the_override_file_wins(tmp_path: Path) -> None:
    db = tmp_path / "costs.duckdb"
    prices = tmp_path / "negotiated.csv"
    prices.write_text(OVERRIDES)
    with Simulator(history=HISTORY, api_key=KEY) as sim:
        env_result = run_cli(
            "extract", "--db", str(db), "--base-url", sim.url, "--prices", str(prices),
            cwd=tmp_path,
        )  # fmt: skip
    assert env_result.returncode == 0, env_result.stderr
    got = costs(db)
    # gpt-4o-mini at $1 / (empty: the input price) $1 / $2:
    # (400,000 * 1 + 1,600,000 * 1 + 200,000 * 2) / 1e6 = 2.4, half: 1.2
    assert got["batch_cached"]["cost_usd"] == pytest.approx(1.2)
    assert got["batch_cached"]["price_source"] == "negotiated.csv"
    # the fine-tuned model at $3 / $1.50 / $12:
    # (500,000 * 3 + 500,000 * 1.5 + 100,000 * 12) / 1e6 = 1.5 + 0.75 + 1.2 = 3.45, half: 1.725
    assert got["batch_fine_tuned"]["cost_usd"] == pytest.approx(1.725)
    assert got["batch_fine_tuned"]["is_priced"]
    # the models the file does not name keep the catalogue's price
    assert got["batch_reasoning"]["price_source"] == CATALOGUE
    assert got["batch_reasoning"]["cost_usd"] == pytest.approx(0.165)

    # `batchlens prices` lists the file as the source, and no unpriced model is left
    listing = run_cli("prices", "--db", str(db), "--prices", str(prices), cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "negotiated.csv" in listing.stdout and CATALOGUE in listing.stdout
    assert "Every model in the history has a price." in listing.stdout
    assert "Note:" not in listing.stdout

    # models without the file (and no $BATCHLENS_PRICES): back to the catalogue only
    rebuilt = run_cli("models", "--db", str(db), cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert costs(db)["batch_fine_tuned"]["cost_usd"] is None
    listing = run_cli("prices", "--db", str(db), cwd=tmp_path)
    assert FINE_TUNED_MODEL in listing.stdout.split("Models without a price")[1]
    # ... and with the file named again, `prices` says the views do not use it yet
    stale = run_cli("prices", "--db", str(db), "--prices", str(prices), cwd=tmp_path)
    assert "run `batchlens models`" in stale.stdout
    # ... and so does the report, which only reads: one warning line on stderr
    read = run_cli("report", "--db", str(db), "--prices", str(prices), cwd=tmp_path)
    assert read.returncode == 0 and read.stderr.startswith("batchlens: warning: the views")


def test_prices_from_the_environment(tmp_path: Path, golden_db: Path) -> None:
    db = tmp_path / "copy.duckdb"
    shutil.copy(golden_db, db)
    prices = tmp_path / "prices.csv"
    prices.write_text("model,input_mtok,cached_input_mtok,output_mtok\no3,1,1,1\n")

    result = run_cli(
        "models", "--db", str(db), cwd=tmp_path, env=cli_env(BATCHLENS_PRICES=str(prices))
    )
    assert result.returncode == 0, result.stderr
    # no valid_from: $1 always; (1,000,000 + 100,000) * 1 / 1e6 = 1.1, half: 0.55
    assert costs(db)["batch_o3_before"]["cost_usd"] == pytest.approx(0.55)
    assert costs(db)["batch_o3_after"]["cost_usd"] == pytest.approx(0.55)


def test_override_periods_by_valid_from(tmp_path: Path, golden_db: Path) -> None:
    db = tmp_path / "copy.duckdb"
    shutil.copy(golden_db, db)
    prices = tmp_path / "prices.csv"
    prices.write_text(
        "model,input_mtok,cached_input_mtok,output_mtok,valid_from\n"
        "o3,10,10,10,\n"
        "o3,1,1,1,2025-06-10\n"
    )
    build_models(db, overrides=read_overrides(prices))
    got = costs(db)
    # before 2025-06-10: 1,100,000 * 10 / 1e6 = 11, half 5.5; from then: 1.1, half 0.55
    assert got["batch_o3_before"]["cost_usd"] == pytest.approx(5.5)
    assert got["batch_o3_after"]["cost_usd"] == pytest.approx(0.55)


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("model,input,output\ngpt-4o,1,2\n", 1, "header"),
        ("model,input_mtok,cached_input_mtok,output_mtok\ngpt-4o,1,,2\ngpt-4o-mini,free,,2\n",
         3, "input_mtok must be a number"),
        ("model,input_mtok,cached_input_mtok,output_mtok\ngpt-4o,1,,-2\n", 2, "output_mtok"),
        ("model,input_mtok,cached_input_mtok,output_mtok\ngpt-4o,1,2\n", 2, "expected 4 fields"),
        ("model,input_mtok,cached_input_mtok,output_mtok\n,1,1,2\n", 2, "model name is empty"),
        ("model,input_mtok,cached_input_mtok,output_mtok\ngpt-4o,1,,\n", 2, "output_mtok"),
        ("model,input_mtok,cached_input_mtok,output_mtok\nx,1,1,1\n\nx,2,2,2\n", 4, "twice"),
        ("model,input_mtok,cached_input_mtok,output_mtok,valid_from\nx,1,1,1,June\n", 2,
         "valid_from"),
        ("", 1, "empty"),
    ],
)  # fmt: skip
def test_a_malformed_override_file_names_the_line(
    tmp_path: Path, text: str, line: int, why: str
) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text(text)
    with pytest.raises(UsageError, match=rf"prices\.csv: line {line}: .*{why}"):
        read_overrides(prices)


@pytest.mark.slow  # four CLI runs
def test_a_malformed_override_file_stops_the_run_before_it_loads(tmp_path: Path) -> None:
    db = tmp_path / "costs.duckdb"
    prices = tmp_path / "prices.csv"
    prices.write_text("model,input_mtok,cached_input_mtok,output_mtok\ngpt-4o,1,,2\no3,x,,1\n")
    with Simulator(history=HISTORY, api_key=KEY) as sim:
        result = run_cli(
            "extract", "--db", str(db), "--base-url", sim.url, "--prices", str(prices),
            cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("batchlens: ") and "line 3" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not db.exists()  # nothing was loaded
    for command in ("models", "prices", "report"):
        result = run_cli(command, "--db", str(db), "--prices", str(prices), cwd=tmp_path)
        assert result.returncode == 2 and "line 3" in result.stderr, command


def test_a_missing_override_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read the prices file .*no\.csv"):
        read_overrides(tmp_path / "no.csv")


def test_batch_discount_per_provider(tmp_path: Path, golden_db: Path) -> None:
    db = tmp_path / "copy.duckdb"
    shutil.copy(golden_db, db)
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text(
        "[sources.openai_batches.batch_discount]\nopenai = 0.75\n"
    )
    result = run_cli("models", "--db", str(db), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # batch_cached: standard 0.30 (above), at 75 %: 0.225, saved 0.075
    row = costs(db)["batch_cached"]
    assert row["cost_usd"] == pytest.approx(0.225) and row["saved_usd"] == pytest.approx(0.075)
    (tmp_path / ".dlt" / "config.toml").write_text(
        "[sources.openai_batches.batch_discount]\nopenai = 2\n"
    )
    result = run_cli("models", "--db", str(db), cwd=tmp_path)
    assert result.returncode == 2 and "batch_discount" in result.stderr


# --- usage from the output file ------------------------------------------------------------


def test_output_file_usage_stands_in_for_a_missing_batch_usage(
    tmp_path: Path, golden_db: Path
) -> None:
    """A batch without `usage` whose output file was loaded is costed from its lines.

    `stg_batch_requests` reads a hand-made table of lines here, with round token counts so
    that the arithmetic below is checkable by hand (that the simulator's output-file usage
    reaches `stg_batch_requests` and adds up to the batch's is checked in
    test_request_files.py).
    """
    db = tmp_path / "copy.duckdb"
    shutil.copy(golden_db, db)
    with contextlib.closing(connect(db)) as connection:
        connection.execute(
            "create table openai_batches.hand_made_requests as select * from (values "
            "('default', 'batch_no_usage', 'r1', 'output', 'gpt-4o-mini', 600000, 100000, "
            "50000, 0, 650000), "
            "('default', 'batch_no_usage', 'r2', 'output', 'gpt-4o-mini', 400000, 300000, "
            "50000, 0, 450000), "
            "('default', 'batch_no_usage', 'r3', 'error', null, null, null, null, null, null), "
            # a batch with its own usage: the batch's usage wins over its lines
            "('default', 'batch_cached', 'r1', 'output', 'gpt-4o-mini', 1, 0, 1, 0, 2)"
            ") as t(account, batch_id, custom_id, kind, model, input_tokens, cached_tokens, "
            "output_tokens, reasoning_tokens, total_tokens)"
        )
        # the columns of the real staging view that costs do not read
        for column, kind in (("file_id", "varchar"), ("line_id", "varchar"),
                             ("status_code", "bigint"), ("error_code", "varchar"),
                             ("error_type", "varchar"), ("error_message", "varchar"),
                             ("error_param", "varchar")):  # fmt: skip
            connection.execute(
                f"alter table openai_batches.hand_made_requests add column {column} {kind}"
            )
    root = tmp_path / "sql"
    shutil.copytree(sql_dir(), root)
    (root / "staging" / "stg_batch_requests.sql").write_text(
        "select * from openai_batches.hand_made_requests"
    )
    build_models(db, root)
    got = costs(db)
    row = got["batch_no_usage"]
    # lines: input 1,000,000, cached 400,000, output 100,000 at gpt-4o-mini's prices:
    # (600,000 * 0.15 + 400,000 * 0.075 + 100,000 * 0.60) / 1e6 = 0.09 + 0.03 + 0.06 = 0.18
    assert (row["input_tokens"], row["cached_tokens"], row["output_tokens"]) == (
        1_000_000,
        400_000,
        100_000,
    )
    assert row["usage_source"] == "output_file"
    assert row["cost_usd"] == pytest.approx(0.09)
    assert got["batch_cached"]["usage_source"] == "batch"
    assert got["batch_cached"]["cost_usd"] == pytest.approx(0.15)


# --- the report -----------------------------------------------------------------------------


def test_the_report_shows_spend_and_names_the_unpriced(golden_db: Path) -> None:
    data = json.loads(report(golden_db, fmt="json", days=3_650))  # every golden batch
    longest = {row["model"]: row for row in data["spend"]["windows"] if row["days"] == 3_650}
    # o3: 7.0 before its price change and 1.4 after (above); saved as much, at half price
    assert longest["o3"]["cost_usd"] == pytest.approx(8.4)
    assert longest["o3"]["saved_usd"] == pytest.approx(8.4)
    assert longest["o3"]["priced_batches"] == 2
    # gpt-4o-mini: batch_cached only (batch_no_usage has no usage)
    assert longest["gpt-4o-mini"]["cost_usd"] == pytest.approx(0.15)
    assert longest["gpt-4o-mini"]["priced_batches"] == 1
    tuned = longest[FINE_TUNED_MODEL]
    assert tuned["cost_usd"] is None and tuned["unpriced_batches"] == 1
    assert data["spend"]["unpriced_models"] == [
        {
            "account": "default",
            "model": FINE_TUNED_MODEL,
            "batches": 1,
            "latest_batch_id": "batch_fine_tuned",
        },
        {"account": "default", "model": None, "batches": 1, "latest_batch_id": "batch_no_model"},
    ]
    text = report(golden_db, fmt="table", days=3_650)
    assert "Spend (batch prices, USD)" in text
    assert f"no price for {FINE_TUNED_MODEL} (default): 1 batches" in text
    # without a model there is nothing a prices file could name
    assert "no model named (default): 1 batches" in text and "no price for None" not in text


def test_prices_needs_a_database_with_built_models(tmp_path: Path) -> None:
    missing = tmp_path / "missing.duckdb"
    with pytest.raises(UsageError, match="does not exist"):
        prices_report(Target("duckdb", label=str(missing), db=missing))
    assert not missing.exists()
    bare = tmp_path / "bare.duckdb"
    with contextlib.closing(connect(bare)) as connection:
        connection.execute("create schema openai_batches")
    with pytest.raises(UsageError, match="no prices yet; run `batchlens models"):
        prices_report(Target("duckdb", label=str(bare), db=bare))


def test_model_names_are_text_not_markup() -> None:
    import io

    from rich.console import Console

    from batchlens.report.spend import show_spend

    console = Console(file=io.StringIO(), width=200, record=True, color_system=None)
    hostile = "[bold]ft:evil[/bold]"
    row = {"days": 1, "account": "[red]a", "model": hostile, "priced_batches": 1,
           "unpriced_batches": 0, "cost_usd": 1.5, "saved_usd": 1.5}  # fmt: skip
    unpriced = {"account": "[red]a", "model": hostile, "batches": 2, "latest_batch_id": "b"}
    show_spend(console, {"windows": [row], "unpriced_models": [unpriced]}, days=30)
    text = console.export_text()
    assert text.count(hostile) == 2 and text.count("[red]a") == 2


def test_where_the_override_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from batchlens.views.prices import prices_path

    monkeypatch.delenv("BATCHLENS_PRICES", raising=False)
    monkeypatch.delenv("SOURCES__OPENAI_BATCHES__PRICES", raising=False)
    assert prices_path(None) is None
    monkeypatch.setenv("SOURCES__OPENAI_BATCHES__PRICES", str(tmp_path / "config.csv"))
    assert prices_path(None) == tmp_path / "config.csv"  # `prices` under [sources.openai_batches]
    monkeypatch.setenv("BATCHLENS_PRICES", str(tmp_path / "env.csv"))
    assert prices_path(None) == tmp_path / "env.csv"  # the variable wins over dlt's config
    assert prices_path(str(tmp_path / "flag.csv")) == tmp_path / "flag.csv"  # the flag over all
