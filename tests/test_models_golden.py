"""The SQL models against a hand-made history whose every answer is known.

The golden batches go through the real path (simulator over HTTP, dlt, DuckDB file), then
every view is compared with two independent sources of truth: values worked out by hand
for the edge cases (written as literals below), and a deliberately naive Python
reimplementation of metrics.md that loops over the batch dicts, for every row of every view.
"""

from __future__ import annotations

import calendar
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from batchlens.config import Account
from batchlens.errors import BatchlensError, UsageError
from batchlens.run.extract import run_extraction
from batchlens.simulator.server import Simulator
from batchlens.views.build import build_models, discover

API_KEY = "sk-test-golden-models-0001"
MINUTE, HOUR, DAY = 60, 3_600, 86_400
T0 = calendar.timegm((2025, 6, 1, 0, 0, 0))  # a UTC midnight the golden batches straddle
NOW = int(time.time())  # open batches "of today" are placed relative to the wall clock
TERMINAL = {"completed", "failed", "expired", "cancelled"}
ACTIVE = {"validating", "in_progress", "finalizing"}
OPEN_STATUSES = ("validating", "in_progress", "finalizing", "cancelling")
# the lifecycle timestamps a batch gets as it reaches each stage
STAGES = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)
PUBLIC_VIEWS = {
    "statuses",
    "batch_lifecycle",
    "batch_facts",
    "failure_rates_daily",
    "failure_rates_weekly",
    "failure_rates_by_model",
    "failure_rates_trailing",
    "duration_stats_daily",
    "active_batches",
    "active_batches_hourly",
    "active_batches_hourly_by_status",
    "batch_errors",
    "open_batches",
    "batch_costs",
    "costs_daily",
    "request_errors",
    "request_error_codes_daily",
}
# Standard USD per million tokens (input, cached input, output) of the golden models, read
# by hand from genai-prices 0.2.3; a batch pays half of that (test_costs.py has the rest).
GOLDEN_PRICES = {"gpt-4o-mini": (0.15, 0.075, 0.6), "gpt-5": (1.25, 0.125, 10.0)}


def batch(
    batch_id: str,
    status: str,
    created_at: int,
    *,
    endpoint: str = "/v1/chat/completions",
    model: str | None = "gpt-4o-mini",
    legacy: bool = False,
    counts: tuple[int, int, int] | None = (0, 0, 0),
    usage: bool = False,
    errors: list[dict[str, Any]] | None = None,
    **offsets: int,
) -> dict[str, Any]:
    """A Batch object as the API returns it; stage times are offsets from `created_at`."""
    stamps = {
        name: (created_at + offsets[name.removesuffix("_at")])
        if name.removesuffix("_at") in offsets
        else None
        for name in STAGES
    }
    obj: dict[str, Any] = {
        "id": batch_id,
        "object": "batch",
        "endpoint": endpoint,
        "errors": {"object": "list", "data": errors} if errors else None,
        "input_file_id": f"file-in-{batch_id}",
        "completion_window": "24h",
        "status": status,
        "output_file_id": f"file-out-{batch_id}" if status == "completed" else None,
        "error_file_id": f"file-err-{batch_id}" if counts and counts[2] else None,
        "created_at": created_at,
        "expires_at": created_at + DAY,
        **stamps,
        "request_counts": (
            None
            if counts is None
            else {"total": counts[0], "completed": counts[1], "failed": counts[2]}
        ),
        # who the batch is for: two owners, and none at all on the oldest batches
        "metadata": None
        if legacy
        else {"project": "golden", "owner": ("ana", "ben")[len(batch_id) % 2]},
    }
    if not legacy:  # older batches have neither `model` nor `usage`
        obj["model"] = model
        obj["usage"] = (
            {
                "input_tokens": 1000,
                "input_tokens_details": {"cached_tokens": 100},
                "output_tokens": 500,
                "output_tokens_details": {"reasoning_tokens": 50},
                "total_tokens": 1500,
            }
            if usage
            else None
        )
    return obj


def error(code: str, message: str, param: str | None = None, line: int | None = None) -> dict:
    return {"code": code, "message": message, "param": param, "line": line}


DEFAULT = [
    # --- created 2025-05-31 (UTC) -----------------------------------------------------------
    batch("batch_done_a", "completed", T0 - 2 * HOUR, counts=(100, 98, 2), usage=True,
          in_progress=60, finalizing=1_260, completed=1_560),
    # created 23:50, completed 00:50 the next day: still a 2025-05-31 batch
    batch("batch_done_b", "completed", T0 - 10 * MINUTE, counts=(10, 10, 0), usage=True,
          in_progress=120, finalizing=3_000, completed=3_600),
    # rejected input file: never in progress, two errors
    batch("batch_validation_failed", "failed", T0 - 5 * HOUR, endpoint="/v1/embeddings",
          model="text-embedding-3-small", failed=30, errors=[
              error("invalid_json", "Line 3 is not valid JSON.", None, 3),
              error("missing_required_parameter", "Missing required parameter: 'custom_id'.",
                    "custom_id", 7),
          ]),
    # expired with partial results
    batch("batch_expired", "expired", T0 - 20 * HOUR, counts=(1_000, 600, 40),
          in_progress=300, expired=DAY),
    # an older batch: no model, no usage keys at all
    batch("batch_legacy", "completed", T0 - DAY - 3 * HOUR, endpoint="/v1/completions",
          legacy=True, counts=(5, 5, 0), in_progress=50, finalizing=500, completed=560),
    # --- created 2025-06-01 ------------------------------------------------------------------
    # created, in progress and completed exactly on hour marks
    batch("batch_done_c", "completed", T0, counts=(30, 30, 0), usage=True,
          in_progress=HOUR, finalizing=2 * HOUR, completed=3 * HOUR),
    # completed, yet every request failed
    batch("batch_all_failed", "completed", T0 + 30 * MINUTE, counts=(50, 0, 50),
          in_progress=40, finalizing=1_000, completed=1_100),
    # three days in finalizing: completed after expires_at
    batch("batch_slow_finalizing", "completed", T0 + HOUR, endpoint="/v1/responses",
          model="gpt-5", counts=(40, 40, 0), usage=True,
          in_progress=100, finalizing=2 * HOUR, completed=3 * DAY),
    batch("batch_run_failed", "failed", T0 + 2 * HOUR, counts=(200, 20, 30),
          in_progress=60, failed=900, errors=[
              error("token_limit_exceeded", "Enqueued token limit reached for gpt-4o-mini."),
          ]),
    # created exactly at 03:00, when batch_done_c completes
    batch("batch_cancelled", "cancelled", T0 + 3 * HOUR, counts=(10, 3, 0),
          in_progress=60, cancelling=600, cancelled=900),
    batch("batch_cancelled_validating", "cancelled", T0 + 3 * HOUR + 30 * MINUTE,
          cancelling=20, cancelled=80),
    # no request_counts at all: counts as 0 in the sums
    batch("batch_no_counts", "failed", T0 + 4 * HOUR, counts=None, failed=10, errors=[
        error("invalid_url", "The URL provided for this request does not match.", "url", 1),
    ]),
    # --- still open, long past their window: overdue -----------------------------------------
    batch("batch_stuck_in_progress", "in_progress", T0 + 5 * HOUR, counts=(70, 10, 1),
          in_progress=600),
    batch("batch_stuck_finalizing", "finalizing", T0 - 2 * DAY, counts=(9, 9, 0),
          in_progress=100, finalizing=5 * HOUR),
    batch("batch_stuck_cancelling", "cancelling", T0 + 6 * HOUR, in_progress=60, cancelling=120),
    batch("batch_stuck_validating", "validating", T0 + 7 * HOUR),
    # --- still open, recent: inside their window ---------------------------------------------
    batch("batch_recent_validating", "validating", NOW - 5 * MINUTE),
    batch("batch_recent_in_progress", "in_progress", NOW - 2 * HOUR, in_progress=100),
    batch("batch_recent_finalizing", "finalizing", NOW - 3 * HOUR,
          in_progress=60, finalizing=2 * HOUR),
]  # fmt: skip

TEAM_B = [
    batch("batch_b_expired", "expired", T0 - 3 * HOUR, counts=(40, 10, 0),
          in_progress=100, expired=DAY),
    batch("batch_b_done", "completed", T0 + 8 * HOUR, counts=(20, 19, 1),
          in_progress=30, finalizing=600, completed=700),
    # same id as a default batch with errors: the key is (account, id), so no errors here
    batch("batch_run_failed", "completed", T0 + 9 * HOUR, counts=(1, 1, 0),
          in_progress=10, finalizing=20, completed=30),
    batch("batch_b_open", "in_progress", NOW - 30 * MINUTE, in_progress=60),
]  # fmt: skip
HISTORY = {"default": DEFAULT, "team-b": TEAM_B}


def extract(db: Path, history: list[dict], account: str = "default") -> None:
    """One real extraction: the simulator serves `history` over HTTP, dlt loads it."""
    with Simulator(history=history, api_key=API_KEY) as sim:
        run_extraction(db, Account(name=account, base_url=sim.url, api_key=API_KEY))


def views(db: Path, timezone: str = "UTC") -> dict[str, list[dict]]:
    """Every public view as a list of row dicts, timestamps in UTC."""
    with duckdb.connect(str(db), read_only=True) as connection:
        connection.execute(f"set TimeZone = '{timezone}'")
        result = {}
        for view in sorted(PUBLIC_VIEWS | {"as_of"}):
            cursor = connection.execute(f"select * from openai_batches.{view}")
            names = [column[0] for column in cursor.description]
            rows = [
                {name: _value(name, value) for name, value in zip(names, row, strict=True)}
                for row in cursor.fetchall()
            ]
            # views promise no order: sort, so that two reads compare equal
            result[view] = sorted(rows, key=lambda row: [str(value) for value in row.values()])
        return result


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _value(name: str, value: Any) -> Any:
    """UTC timestamps; `metadata` (JSON, which DuckDB hands over as text) parsed."""
    if name == "metadata" and isinstance(value, str):
        return json.loads(value)
    return _utc(value)


def recorded_as_of(db: Path) -> datetime:
    """The input the views must use for "as of": read from the raw extractions table."""
    with duckdb.connect(str(db), read_only=True) as connection:
        (started,) = connection.execute(
            "select max(started_at) from openai_batches.extractions"
        ).fetchone()
    return started.astimezone(UTC)


# --- the naive reimplementation of metrics.md ----------------------------------------------


def ts(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def seconds(end: int | None, start: int | None) -> float | None:
    return None if end is None or start is None else float(end - start)


def quantile_cont(values: Iterable[float | None], q: float) -> float | None:
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return None
    position = q * (len(xs) - 1)
    low, high = math.floor(position), math.ceil(position)
    return xs[low] + (xs[high] - xs[low]) * (position - low)


def ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def share(part: int | None, total: int | None) -> float | None:
    """One batch's share of its requests: NULL without a count or with none sent."""
    return None if part is None or not total else part / total


def expected_cost(model: str | None, usage: dict) -> float | None:
    if model not in GOLDEN_PRICES or usage.get("input_tokens") is None:
        return None
    input_price, cached_price, output_price = GOLDEN_PRICES[model]
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
    standard = (
        (usage["input_tokens"] - cached) * input_price
        + cached * cached_price
        + (usage.get("output_tokens") or 0) * output_price
    ) / 1_000_000
    return 0.5 * standard


def expected_facts(history: dict[str, list[dict]]) -> list[dict]:
    rows = []
    for account, batches in history.items():
        for b in batches:
            status = b["status"]
            completed = status == "completed"
            ends = [b[k] for k in ("completed_at", "failed_at", "expired_at", "cancelling_at",
                                   "cancelled_at") if b[k] is not None]  # fmt: skip
            counts = b["request_counts"] or {}
            usage = b.get("usage") or {}
            errors = (b["errors"] or {}).get("data") or []
            rows.append(
                {
                    "batch_id": b["id"],
                    "account": account,
                    "status": status,
                    "endpoint": b["endpoint"],
                    "model": b.get("model"),
                    "completion_window": b["completion_window"],
                    **{k: ts(b[k]) for k in ("created_at", *STAGES, "expires_at")},
                    "created_day": datetime.fromtimestamp(b["created_at"], UTC).date(),
                    "is_terminal": status in TERMINAL,
                    "is_active": status in ACTIVE,
                    "ended_at": None if status in ACTIVE or not ends else ts(min(ends)),
                    "queue_s": seconds(b["in_progress_at"], b["created_at"]),
                    "duration_s": seconds(b["completed_at"], b["in_progress_at"])
                    if completed
                    else None,
                    "finalize_s": seconds(b["completed_at"], b["finalizing_at"])
                    if completed
                    else None,
                    "turnaround_s": seconds(b["completed_at"], b["created_at"])
                    if completed
                    else None,
                    "is_sla_breach": status == "expired"
                    or (b["completed_at"] is not None and b["completed_at"] > b["expires_at"]),
                    "request_total": counts.get("total"),
                    "request_completed": counts.get("completed"),
                    "request_failed": counts.get("failed"),
                    "input_tokens": usage.get("input_tokens"),
                    "cached_tokens": (usage.get("input_tokens_details") or {}).get("cached_tokens"),
                    "output_tokens": usage.get("output_tokens"),
                    "reasoning_tokens": (usage.get("output_tokens_details") or {}).get(
                        "reasoning_tokens"
                    ),
                    "total_tokens": usage.get("total_tokens"),
                    "error_count": len(errors),
                    "first_error_code": errors[0]["code"] if errors else None,
                    "cost_usd": expected_cost(b.get("model"), usage),
                    "metadata": b["metadata"],
                    "input_file_id": b["input_file_id"],
                    "output_file_id": b["output_file_id"],
                    "error_file_id": b["error_file_id"],
                    # literal histories have no files the simulator serves: nothing loaded
                    "request_error_rows": 0,
                    "top_request_error_code": None,
                    "is_all_failed": status in TERMINAL
                    and (counts.get("total") or 0) > 0
                    and counts.get("failed") == counts.get("total"),
                    "request_failed_share": share(counts.get("failed"), counts.get("total")),
                    "request_completed_share": share(counts.get("completed"), counts.get("total")),
                    "furthest_status": "finalizing"
                    if b["finalizing_at"] is not None
                    else "in_progress"
                    if b["in_progress_at"] is not None
                    else "validating",
                }
            )
    return rows


def rate_counts(members: list[dict]) -> dict:
    """Counts and rates of a group of terminal batches, the glossary word for word."""
    n = {s: sum(1 for f in members if f["status"] == s) for s in TERMINAL}
    total = sum(f["request_total"] or 0 for f in members)
    failed = sum(f["request_failed"] or 0 for f in members)
    return {
        "terminal": len(members),
        **n,
        "failure_rate": ratio(n["failed"], len(members)),
        "expired_rate": ratio(n["expired"], len(members)),
        "cancelled_rate": ratio(n["cancelled"], len(members)),
        "request_total": total,
        "request_failed": failed,
        "request_failure_rate": ratio(failed, total),
    }


def expected_rates_by(facts: list[dict], **keys: Callable[[dict], Any]) -> list[dict]:
    """One row per distinct value of `keys` (name -> how to read it from a batch)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for f in facts:
        if f["is_terminal"]:
            groups[tuple(read(f) for read in keys.values())].append(f)
    return [
        {**dict(zip(keys, group, strict=True)), **rate_counts(members)}
        for group, members in groups.items()
    ]


def expected_failure_rates(facts: list[dict]) -> list[dict]:
    return expected_rates_by(
        facts,
        day=lambda f: f["created_day"],
        account=lambda f: f["account"],
        endpoint=lambda f: f["endpoint"],
        model=lambda f: f["model"],
    )


def expected_rates_weekly(facts: list[dict]) -> list[dict]:
    return expected_rates_by(
        facts,
        week=lambda f: f["created_day"] - timedelta(days=f["created_day"].weekday()),
        account=lambda f: f["account"],
        endpoint=lambda f: f["endpoint"],
    )


def expected_rates_by_model(facts: list[dict]) -> list[dict]:
    return expected_rates_by(
        facts,
        account=lambda f: f["account"],
        endpoint=lambda f: f["endpoint"],
        model=lambda f: f["model"],
    )


def expected_rates_trailing(facts: list[dict], as_of: datetime) -> list[dict]:
    """Windows of 1 to (days since the account's first batch) days ending on as of's day."""
    as_of_day = as_of.astimezone(UTC).date()
    rows = []
    for account in sorted({f["account"] for f in facts}):
        mine = [f for f in facts if f["account"] == account]
        longest = max(1, (as_of_day - min(f["created_day"] for f in mine)).days + 1)
        for days in range(1, longest + 1):
            first_day = as_of_day - timedelta(days=days - 1)
            members = [
                f for f in mine if f["is_terminal"] and first_day <= f["created_day"] <= as_of_day
            ]
            rows.append(
                {"days": days, "first_day": first_day, "account": account, **rate_counts(members)}
            )
    return rows


def expected_rates_day_total(facts: list[dict]) -> list[dict]:
    """Every account, endpoint and model of a creation day together."""
    return expected_rates_by(facts, period_start=lambda f: f["created_day"])


def expected_rates_since(facts: list[dict]) -> list[dict]:
    """Per account and creation instant: its terminal batches created at or after it."""
    rows = []
    for account in sorted({f["account"] for f in facts}):
        mine = [f for f in facts if f["account"] == account and f["is_terminal"]]
        for at in sorted({f["created_at"] for f in mine}):
            members = [f for f in mine if f["created_at"] >= at]
            rows.append(
                {"account": account, "first_created_at": at, "period_start": at.date(),
                 **rate_counts(members)}
            )  # fmt: skip
    return rows


def expected_rates_label(facts: list[dict], as_of: datetime) -> list[dict]:
    """Per metadata key (None: every batch), value and creation day: the terminal batches
    of every account with that value, created from that day to as of's day."""
    as_of_day = as_of.astimezone(UTC).date()
    ended = [f for f in facts if f["is_terminal"] and f["created_day"] <= as_of_day]
    keys = sorted({key for f in facts for key in (f["metadata"] or {})})
    rows = []
    for key in [*keys, None]:
        groups: dict[Any, list[dict]] = defaultdict(list)
        for f in ended:
            groups[None if key is None else (f["metadata"] or {}).get(key)].append(f)
        for value, members in groups.items():
            for day in sorted({f["created_day"] for f in members}):
                later = [f for f in members if f["created_day"] >= day]
                rows.append(
                    {"label_key": key, "label_value": value, "period_start": day,
                     **rate_counts(later)}
                )  # fmt: skip
    return rows


def expected_duration_stats(facts: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for f in facts:
        if f["status"] == "completed":
            groups[(f["created_day"], f["account"], f["endpoint"], f["model"])].append(f)
    rows = []
    for (day, account, endpoint, model), members in groups.items():
        durations = [f["duration_s"] for f in members]
        known = [d for d in durations if d is not None]
        rows.append(
            {
                "day": day,
                "account": account,
                "endpoint": endpoint,
                "model": model,
                "batches": len(members),
                "duration_p50_s": quantile_cont(durations, 0.5),
                "duration_p90_s": quantile_cont(durations, 0.9),
                "duration_p99_s": quantile_cont(durations, 0.99),
                "duration_mean_s": sum(known) / len(known) if known else None,
                "duration_max_s": max(known) if known else None,
                "queue_p50_s": quantile_cont([f["queue_s"] for f in members], 0.5),
                "turnaround_p50_s": quantile_cont([f["turnaround_s"] for f in members], 0.5),
            }
        )
    return rows


def expected_active(facts: list[dict], accounts: Iterable[str]) -> list[dict]:
    rows = []
    for account in accounts:
        for status in OPEN_STATUSES:
            members = [f for f in facts if f["account"] == account and f["status"] == status]
            rows.append(
                {
                    "account": account,
                    "status": status,
                    "batches": len(members),
                    "oldest_created_at": min((f["created_at"] for f in members), default=None),
                    "is_active": status in ACTIVE,
                    "lifecycle_order": OPEN_STATUSES.index(status) + 1,
                }
            )
    return rows


def expected_hourly(facts: list[dict], as_of: datetime) -> list[dict]:
    """Brute force: every hour, every batch, the definition word for word."""
    rows = []
    last = as_of.replace(minute=0, second=0, microsecond=0)
    for account in sorted({f["account"] for f in facts}):
        mine = [f for f in facts if f["account"] == account]
        hour = min(f["created_at"] for f in mine).replace(minute=0, second=0, microsecond=0)
        spans = [(f["created_at"], f["ended_at"]) for f in mine]
        while hour <= last:
            active = sum(1 for start, end in spans if start <= hour and (end is None or end > hour))
            rows.append({"hour": hour, "account": account, "active": active})
            hour += timedelta(hours=1)
    return rows


def status_at(f: dict, hour: datetime) -> str | None:
    """The active status of a batch at an instant, read off its timestamps in order; a
    missing one means the status was skipped (it starts when the next known one does)."""
    if f["created_at"] > hour or (f["ended_at"] is not None and f["ended_at"] <= hour):
        return None
    starts = {
        "finalizing": next((t for t in (f["finalizing_at"], f["ended_at"]) if t), None),
        "in_progress": next(
            (t for t in (f["in_progress_at"], f["finalizing_at"], f["ended_at"]) if t), None
        ),
    }
    for status, start in starts.items():
        if start is not None and start <= hour:
            return status
    return "validating"


def expected_hourly_by_status(facts: list[dict], as_of: datetime) -> list[dict]:
    """Brute force again: each hour of expected_hourly's spine, each batch's status then."""
    rows = []
    for row in expected_hourly(facts, as_of):
        mine = [f for f in facts if f["account"] == row["account"]]
        found = [status_at(f, row["hour"]) for f in mine]
        rows += [
            {**row, "status": status, "batches": found.count(status)} | {"active": None}
            for status in sorted(ACTIVE)
        ]
    return [{k: v for k, v in r.items() if k != "active"} for r in rows]


def expected_errors(history: dict[str, list[dict]]) -> list[dict]:
    rows = []
    for account, batches in history.items():
        for b in batches:
            for e in (b["errors"] or {}).get("data") or []:
                rows.append(
                    {
                        "batch_id": b["id"],
                        "account": account,
                        "created_at": ts(b["created_at"]),
                        "status": b["status"],
                        **e,
                    }
                )
    return rows


def expected_open(facts: list[dict], as_of: datetime) -> list[dict]:
    rows = []
    for f in facts:
        if f["is_terminal"]:
            continue
        since = {
            "validating": f["created_at"],
            "in_progress": f["in_progress_at"],
            "finalizing": f["finalizing_at"],
            "cancelling": f["cancelling_at"],
        }[f["status"]]
        stalled = f["status"] == "finalizing" and as_of - since > timedelta(hours=6)
        rows.append(
            {
                "batch_id": f["batch_id"],
                "account": f["account"],
                "status": f["status"],
                "created_at": f["created_at"],
                "status_since": since,
                "hours_in_status": (as_of - since).total_seconds() / 3600,
                "expires_at": f["expires_at"],
                "is_overdue": as_of > f["expires_at"],
                "is_stalled": stalled,
                "is_stuck": stalled or as_of > f["expires_at"],
            }
        )
    return rows


# --- comparison ---------------------------------------------------------------------------


def assert_rows_equal(actual: list[dict], expected: list[dict], key: tuple[str, ...]) -> None:
    """Same rows, same columns (names and order aside), floats to 1e-9 relative."""
    assert len(actual) == len(expected)
    by_key = {tuple(row[k] for k in key): row for row in actual}
    assert len(by_key) == len(actual), "the grain is not unique"
    for want in expected:
        got = by_key[tuple(want[k] for k in key)]
        assert set(got) == set(want), (sorted(got), sorted(want))
        for column, value in want.items():
            if isinstance(value, float) and got[column] is not None:
                assert got[column] == pytest.approx(value, rel=1e-9), (want, column)
            else:
                assert got[column] == value, (want, column, got[column])


@pytest.fixture(scope="module")
def golden_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("golden") / "golden.duckdb"
    extract(db, DEFAULT, "default")
    extract(db, TEAM_B, "team-b")
    build_models(db)
    return db


@pytest.fixture(scope="module")
def golden(golden_db: Path) -> dict[str, list[dict]]:
    return views(golden_db)


@pytest.fixture(scope="module")
def facts() -> list[dict]:
    return expected_facts(HISTORY)


# --- every row of every view against the naive reimplementation -------------------------


def test_views_have_exactly_the_contract_columns(golden: dict[str, list[dict]]) -> None:
    columns = {view: list(rows[0]) for view, rows in golden.items() if rows}
    assert columns["batch_facts"] == list(expected_facts(HISTORY)[0])
    assert columns["failure_rates_daily"] == [
        "day", "account", "endpoint", "model", "terminal", "completed", "failed", "expired",
        "cancelled", "failure_rate", "expired_rate", "cancelled_rate", "request_total",
        "request_failed", "request_failure_rate",
    ]  # fmt: skip
    assert columns["duration_stats_daily"] == [
        "day", "account", "endpoint", "model", "batches", "duration_p50_s", "duration_p90_s",
        "duration_p99_s", "duration_mean_s", "duration_max_s", "queue_p50_s",
        "turnaround_p50_s",
    ]  # fmt: skip
    assert columns["active_batches"] == [
        "account", "status", "batches", "oldest_created_at", "is_active", "lifecycle_order",
    ]  # fmt: skip
    assert columns["active_batches_hourly"] == ["hour", "account", "active"]
    assert columns["batch_errors"] == [
        "batch_id", "account", "created_at", "status", "code", "message", "param", "line",
    ]  # fmt: skip
    assert columns["open_batches"] == [
        "batch_id", "account", "status", "created_at", "status_since", "hours_in_status",
        "expires_at", "is_overdue", "is_stalled", "is_stuck",
    ]  # fmt: skip


def test_column_types(golden_db: Path) -> None:
    """Seconds and rates are DOUBLE, counts BIGINT, times TIMESTAMPTZ, days DATE."""
    with duckdb.connect(str(golden_db), read_only=True) as connection:
        types = dict(
            connection.execute(
                "select table_name || '.' || column_name, data_type "
                "from information_schema.columns where table_schema = 'openai_batches'"
            ).fetchall()
        )
    for column in ("queue_s", "duration_s", "finalize_s", "turnaround_s"):
        assert types[f"batch_facts.{column}"] == "DOUBLE"
    for column in ("failure_rate", "expired_rate", "cancelled_rate", "request_failure_rate"):
        assert types[f"failure_rates_daily.{column}"] == "DOUBLE"
    for column in ("terminal", "completed", "failed", "request_total", "request_failed"):
        assert types[f"failure_rates_daily.{column}"] == "BIGINT"
    assert types["duration_stats_daily.duration_p50_s"] == "DOUBLE"
    assert types["active_batches.batches"] == "BIGINT"
    assert types["active_batches_hourly.active"] == "BIGINT"
    assert types["active_batches_hourly.hour"] == "TIMESTAMP WITH TIME ZONE"
    assert types["batch_facts.created_day"] == "DATE"
    assert types["failure_rates_daily.day"] == "DATE"
    assert types["open_batches.hours_in_status"] == "DOUBLE"
    assert types["open_batches.is_overdue"] == "BOOLEAN"


def test_batch_facts(golden: dict[str, list[dict]], facts: list[dict]) -> None:
    assert_rows_equal(golden["batch_facts"], facts, ("account", "batch_id"))


def test_batch_lifecycle_is_batch_facts_without_what_the_joins_add(
    golden: dict[str, list[dict]], facts: list[dict]
) -> None:
    joined = {"error_count", "first_error_code", "cost_usd", "request_error_rows"}
    joined.add("top_request_error_code")
    expected = [{k: v for k, v in row.items() if k not in joined} for row in facts]
    assert_rows_equal(golden["batch_lifecycle"], expected, ("account", "batch_id"))


def test_failure_rates_daily(golden: dict[str, list[dict]], facts: list[dict]) -> None:
    key = ("day", "account", "endpoint", "model")
    assert_rows_equal(golden["failure_rates_daily"], expected_failure_rates(facts), key)


def test_failure_rates_weekly(golden: dict[str, list[dict]], facts: list[dict]) -> None:
    key = ("week", "account", "endpoint")
    assert_rows_equal(golden["failure_rates_weekly"], expected_rates_weekly(facts), key)


def test_failure_rates_by_model(golden: dict[str, list[dict]], facts: list[dict]) -> None:
    key = ("account", "endpoint", "model")
    assert_rows_equal(golden["failure_rates_by_model"], expected_rates_by_model(facts), key)


def test_failure_rates_trailing(
    golden: dict[str, list[dict]], facts: list[dict], golden_db: Path
) -> None:
    expected = expected_rates_trailing(facts, recorded_as_of(golden_db))
    assert len(expected) > 30  # the history spans weeks: the running sums are exercised
    assert_rows_equal(golden["failure_rates_trailing"], expected, ("account", "days"))


# The grains of failure_rates no view selects (the report's, the page's and check's queries
# do): the key columns each grain has, the rest of the keys NULL.
GRAIN_KEYS = {
    "day_total": ("period_start",),
    "since": ("account", "first_created_at", "period_start"),
    "label": ("label_key", "label_value", "period_start"),
}
RATE_COLUMNS = (
    "terminal", "completed", "failed", "expired", "cancelled", "failure_rate", "expired_rate",
    "cancelled_rate", "request_total", "request_failed", "request_failure_rate",
)  # fmt: skip
KEY_COLUMNS = (
    "period_start", "days", "account", "endpoint", "model", "first_created_at", "label_key",
    "label_value",
)  # fmt: skip


def grain_rows(db: Path, grain: str) -> list[dict]:
    """The rows of one grain of failure_rates: its keys and counts; the other keys NULL."""
    with duckdb.connect(str(db), read_only=True) as connection:
        connection.execute("set TimeZone = 'UTC'")
        cursor = connection.execute(
            "select * from openai_batches.failure_rates where grain = $grain", {"grain": grain}
        )
        names = [column[0] for column in cursor.description]
        found = [dict(zip(names, map(_utc, row), strict=True)) for row in cursor.fetchall()]
    keys = GRAIN_KEYS[grain]
    assert all(row[name] is None for row in found for name in KEY_COLUMNS if name not in keys)
    return [{name: row[name] for name in (*keys, *RATE_COLUMNS)} for row in found]


def test_failure_rates_day_total(golden_db: Path, facts: list[dict]) -> None:
    expected = expected_rates_day_total(facts)
    assert_rows_equal(grain_rows(golden_db, "day_total"), expected, ("period_start",))


def test_failure_rates_since(golden_db: Path, facts: list[dict]) -> None:
    expected = expected_rates_since(facts)
    key = ("account", "first_created_at")
    assert_rows_equal(grain_rows(golden_db, "since"), expected, key)


def test_failure_rates_label(golden_db: Path, facts: list[dict]) -> None:
    expected = expected_rates_label(facts, recorded_as_of(golden_db))
    assert {row["label_key"] for row in expected} == {"owner", "project", None}
    assert any(row["label_value"] is None for row in expected if row["label_key"])  # legacy
    key = ("label_key", "label_value", "period_start")
    assert_rows_equal(grain_rows(golden_db, "label"), expected, key)


def test_statuses(golden: dict[str, list[dict]]) -> None:
    rows = {r["status"]: r for r in golden["statuses"]}
    assert [s for s, r in sorted(rows.items(), key=lambda i: i[1]["lifecycle_order"])] == [
        *OPEN_STATUSES, "completed", "failed", "expired", "cancelled",
    ]  # fmt: skip
    assert {s for s, r in rows.items() if r["is_active"]} == ACTIVE
    assert {s for s, r in rows.items() if r["is_terminal"]} == TERMINAL
    assert {s for s, r in rows.items() if r["is_open"]} == set(OPEN_STATUSES)
    assert {s: r["stuck_after_hours"] for s, r in rows.items() if r["stuck_after_hours"]} == {
        "finalizing": 6.0
    }
    assert {s: r["label"] for s, r in rows.items() if r["label"] != s} == {
        "in_progress": "in progress"
    }
    assert len({r["colour"] for r in rows.values()}) == len(rows)


def test_duration_stats_daily(golden: dict[str, list[dict]], facts: list[dict]) -> None:
    key = ("day", "account", "endpoint", "model")
    assert_rows_equal(golden["duration_stats_daily"], expected_duration_stats(facts), key)


def test_active_batches(golden: dict[str, list[dict]], facts: list[dict]) -> None:
    expected = expected_active(facts, HISTORY)
    assert_rows_equal(golden["active_batches"], expected, ("account", "status"))


def test_active_batches_hourly(
    golden: dict[str, list[dict]], facts: list[dict], golden_db: Path
) -> None:
    expected = expected_hourly(facts, recorded_as_of(golden_db))
    assert_rows_equal(golden["active_batches_hourly"], expected, ("account", "hour"))


def test_active_batches_hourly_by_status(
    golden: dict[str, list[dict]], facts: list[dict], golden_db: Path
) -> None:
    expected = expected_hourly_by_status(facts, recorded_as_of(golden_db))
    key = ("account", "hour", "status")
    assert_rows_equal(golden["active_batches_hourly_by_status"], expected, key)


def test_statuses_cover_each_active_span_exactly(facts: list[dict], golden_db: Path) -> None:
    """Why active_batches_hourly can be defined as the sum over statuses: the independent
    count by status adds up, hour by hour, to the independent count of active batches."""
    as_of = recorded_as_of(golden_db)
    sums: dict[tuple, int] = defaultdict(int)
    for row in expected_hourly_by_status(facts, as_of):
        sums[(row["account"], row["hour"])] += row["batches"]
    active = {(r["account"], r["hour"]): r["active"] for r in expected_hourly(facts, as_of)}
    assert sums == active
    assert max(active.values()) > 0


def test_batch_errors(golden: dict[str, list[dict]]) -> None:
    key = ("account", "batch_id", "code")
    assert_rows_equal(golden["batch_errors"], expected_errors(HISTORY), key)


def test_open_batches(golden: dict[str, list[dict]], facts: list[dict], golden_db: Path) -> None:
    expected = expected_open(facts, recorded_as_of(golden_db))
    assert_rows_equal(golden["open_batches"], expected, ("account", "batch_id"))


def test_as_of_is_the_latest_extraction(golden: dict[str, list[dict]], golden_db: Path) -> None:
    as_of = recorded_as_of(golden_db)
    assert golden["as_of"] == [
        {"as_of": as_of, "as_of_source": "extraction", "as_of_day": as_of.date()}
    ]


def test_views_do_not_depend_on_the_session_time_zone(golden_db: Path) -> None:
    """Days and hours are UTC: a session in India (+05:30) must see the same answers."""
    assert views(golden_db, "Asia/Kolkata") == views(golden_db, "UTC")


def test_views_give_the_same_answer_later(golden_db: Path, golden: dict[str, list]) -> None:
    """Nothing reads the clock: querying again later changes nothing."""
    time.sleep(1.1)
    assert views(golden_db) == golden


# --- the edge cases, worked out by hand -------------------------------------------------------


def fact(golden: dict[str, list[dict]], batch_id: str, account: str = "default") -> dict:
    (row,) = [
        r for r in golden["batch_facts"] if r["batch_id"] == batch_id and r["account"] == account
    ]
    return row


def test_hand_worked_batch_facts(golden: dict[str, list[dict]]) -> None:
    done_b = fact(golden, "batch_done_b")
    assert done_b["created_day"] == date(2025, 5, 31)  # 23:50 UTC, completed after midnight
    assert (done_b["queue_s"], done_b["duration_s"], done_b["finalize_s"]) == (120, 3480, 600)
    assert done_b["turnaround_s"] == 3600
    assert done_b["is_sla_breach"] is False
    assert fact(golden, "batch_done_c")["created_day"] == date(2025, 6, 1)

    rejected = fact(golden, "batch_validation_failed")
    assert rejected["in_progress_at"] is None and rejected["queue_s"] is None
    assert rejected["duration_s"] is None and rejected["turnaround_s"] is None
    assert rejected["ended_at"] == rejected["failed_at"]
    assert (rejected["error_count"], rejected["first_error_code"]) == (2, "invalid_json")

    assert fact(golden, "batch_slow_finalizing")["is_sla_breach"] is True
    assert fact(golden, "batch_slow_finalizing")["finalize_s"] == 3 * DAY - 2 * HOUR
    assert fact(golden, "batch_expired")["is_sla_breach"] is True
    assert fact(golden, "batch_expired")["duration_s"] is None  # only completed batches

    legacy = fact(golden, "batch_legacy")
    assert legacy["model"] is None and legacy["total_tokens"] is None
    assert fact(golden, "batch_done_a")["total_tokens"] == 1500
    assert fact(golden, "batch_no_counts")["request_total"] is None

    cancelled = fact(golden, "batch_cancelled")
    assert cancelled["ended_at"] == datetime.fromtimestamp(T0 + 3 * HOUR + 600, UTC)
    assert fact(golden, "batch_stuck_finalizing")["ended_at"] is None
    assert fact(golden, "batch_stuck_cancelling")["is_active"] is False  # open, not active
    assert fact(golden, "batch_stuck_cancelling")["is_terminal"] is False

    # same id in two accounts: the errors belong to the default account's batch only
    assert fact(golden, "batch_run_failed")["error_count"] == 1
    assert fact(golden, "batch_run_failed", "team-b")["error_count"] == 0


def rate_row(golden: dict[str, list[dict]], day: date, endpoint: str, account: str = "default"):
    (row,) = [
        r
        for r in golden["failure_rates_daily"]
        if (r["day"], r["endpoint"], r["account"]) == (day, endpoint, account)
        and r["model"] == ("gpt-4o-mini" if endpoint == "/v1/chat/completions" else r["model"])
    ]
    return row


def test_hand_worked_failure_rates(golden: dict[str, list[dict]]) -> None:
    june_1 = rate_row(golden, date(2025, 6, 1), "/v1/chat/completions")
    # done_c, all_failed (completed), run_failed, no_counts (failed), 2 cancelled
    assert (june_1["terminal"], june_1["completed"], june_1["failed"]) == (6, 2, 2)
    assert (june_1["expired"], june_1["cancelled"]) == (0, 2)
    assert june_1["failure_rate"] == pytest.approx(2 / 6)
    assert june_1["cancelled_rate"] == pytest.approx(2 / 6)
    assert june_1["expired_rate"] == 0.0
    # 30 + 50 + 200 + 10 + 0 + (missing counts as 0); failed 0 + 50 + 30 + 0
    assert (june_1["request_total"], june_1["request_failed"]) == (290, 80)
    assert june_1["request_failure_rate"] == pytest.approx(80 / 290)

    may_31 = rate_row(golden, date(2025, 5, 31), "/v1/chat/completions")
    assert (may_31["terminal"], may_31["completed"], may_31["expired"]) == (3, 2, 1)
    assert may_31["failure_rate"] == 0.0
    assert may_31["expired_rate"] == pytest.approx(1 / 3)
    assert (may_31["request_total"], may_31["request_failed"]) == (1110, 42)

    rejected = rate_row(golden, date(2025, 5, 31), "/v1/embeddings")
    assert (rejected["terminal"], rejected["failed"], rejected["failure_rate"]) == (1, 1, 1.0)
    assert rejected["request_total"] == 0
    assert rejected["request_failure_rate"] is None  # no denominator

    # open batches are not in it
    days = {(r["account"], r["day"]) for r in golden["failure_rates_daily"]}
    assert ("default", date(2025, 5, 29)) not in days  # batch_stuck_finalizing's day


def test_hand_worked_duration_stats(golden: dict[str, list[dict]]) -> None:
    (row,) = [
        r
        for r in golden["duration_stats_daily"]
        if r["day"] == date(2025, 5, 31) and r["endpoint"] == "/v1/chat/completions"
    ]
    # done_a: 1500 s in progress, queue 60, turnaround 1560; done_b: 3480, 120, 3600
    assert row["batches"] == 2
    assert row["duration_p50_s"] == pytest.approx(2490)
    assert row["duration_p90_s"] == pytest.approx(1500 + 0.9 * 1980)
    assert row["duration_p99_s"] == pytest.approx(1500 + 0.99 * 1980)
    assert row["duration_mean_s"] == pytest.approx(2490)
    assert row["duration_max_s"] == 3480
    assert row["queue_p50_s"] == pytest.approx(90)
    assert row["turnaround_p50_s"] == pytest.approx(2580)


def test_hand_worked_active_batches(golden: dict[str, list[dict]]) -> None:
    got = {(r["account"], r["status"]): r for r in golden["active_batches"]}
    assert len(got) == 8  # 2 accounts x 4 open statuses, zeros included
    assert got[("default", "validating")]["batches"] == 2
    assert got[("default", "validating")]["oldest_created_at"] == datetime.fromtimestamp(
        T0 + 7 * HOUR, UTC
    )
    assert got[("default", "finalizing")]["batches"] == 2
    assert got[("default", "cancelling")]["batches"] == 1
    assert got[("team-b", "in_progress")]["batches"] == 1
    assert got[("team-b", "validating")] == {
        "account": "team-b",
        "status": "validating",
        "batches": 0,
        "oldest_created_at": None,
        "is_active": True,
        "lifecycle_order": 1,
    }
    assert got[("default", "cancelling")]["is_active"] is False  # open, not active


def test_hand_worked_active_batches_hourly(golden: dict[str, list[dict]]) -> None:
    got = {(r["account"], r["hour"]): r["active"] for r in golden["active_batches_hourly"]}
    at = lambda offset: datetime.fromtimestamp(T0 + offset, UTC)  # noqa: E731
    # 00:00: done_b, expired, stuck_finalizing, and done_c created exactly at 00:00
    assert got[("default", at(0))] == 4
    # 03:00: done_c ended exactly then (not active), batch_cancelled created exactly then
    # (active); expired, stuck_finalizing, slow_finalizing still going
    assert got[("default", at(3 * HOUR))] == 4
    assert got[("team-b", at(0))] == 1
    # the spine starts at the hour of the account's first batch
    first_team_b = min(hour for account, hour in got if account == "team-b")
    assert first_team_b == at(-3 * HOUR)
    # and ends at the hour of "as of", with every batch still active counted
    last_default = max(hour for account, hour in got if account == "default")
    # 2 validating, 2 in progress, 2 finalizing, unless the recent validating one was
    # created after that last hour mark (it is 5 minutes old)
    recent = datetime.fromtimestamp(NOW - 5 * MINUTE, UTC)
    assert got[("default", last_default)] == 5 + (recent <= last_default)


def test_hand_worked_active_batches_hourly_by_status(golden: dict[str, list[dict]]) -> None:
    got = {
        (r["account"], r["hour"], r["status"]): r["batches"]
        for r in golden["active_batches_hourly_by_status"]
    }
    at = lambda offset: datetime.fromtimestamp(T0 + offset, UTC)  # noqa: E731
    hours = {(account, hour) for account, hour, _ in got}
    assert {status for _, _, status in got} == ACTIVE  # cancelling is open, not active
    assert len(got) == 3 * len(hours)  # every status at every hour, zeros included
    # 00:00: done_c created exactly then (validating); done_b and expired in progress;
    # stuck_finalizing finalizing since two days
    assert [got[("default", at(0), s)] for s in ("validating", "in_progress", "finalizing")] == [
        1, 2, 1,
    ]  # fmt: skip
    # 01:00: done_c in progress exactly from then, slow_finalizing created exactly then;
    # expired still in progress; done_b (finalizing from 00:40) and all_failed ended before
    assert [got[("default", at(HOUR), s)] for s in ("validating", "in_progress", "finalizing")] == [
        1, 2, 1,
    ]  # fmt: skip
    # 04:00: cancelled_validating (never in progress) ended 03:31; no_counts failed at
    # 04:00:10 while validating, so it is validating at 04:00
    assert got[("default", at(4 * HOUR), "validating")] == 1
    # team-b 08:00: batch_b_done created exactly then, in progress 30 s later; b_expired
    # in progress until it expires at 21:00
    assert got[("team-b", at(8 * HOUR), "validating")] == 1
    assert got[("team-b", at(8 * HOUR), "in_progress")] == 1
    assert got[("team-b", at(21 * HOUR), "in_progress")] == 0


def test_hand_worked_open_batches(golden: dict[str, list[dict]], golden_db: Path) -> None:
    as_of = recorded_as_of(golden_db)
    got = {r["batch_id"]: r for r in golden["open_batches"] if r["account"] == "default"}
    assert set(got) == {
        "batch_stuck_in_progress",
        "batch_stuck_finalizing",
        "batch_stuck_cancelling",
        "batch_stuck_validating",
        "batch_recent_validating",
        "batch_recent_in_progress",
        "batch_recent_finalizing",
    }
    stuck = got["batch_stuck_finalizing"]
    since = datetime.fromtimestamp(T0 - 2 * DAY + 5 * HOUR, UTC)
    assert stuck["status_since"] == since
    assert stuck["hours_in_status"] == pytest.approx((as_of - since).total_seconds() / 3600)
    assert stuck["is_overdue"] is True
    recent = got["batch_recent_validating"]
    assert recent["status_since"] == recent["created_at"]
    assert recent["is_overdue"] is False
    assert got["batch_recent_finalizing"]["status_since"] == datetime.fromtimestamp(NOW - HOUR, UTC)
    assert got["batch_stuck_cancelling"]["status_since"] == datetime.fromtimestamp(
        T0 + 6 * HOUR + 120, UTC
    )


def test_hand_worked_batch_errors(golden: dict[str, list[dict]]) -> None:
    rows = {(r["batch_id"], r["code"]): r for r in golden["batch_errors"]}
    assert len(rows) == 4
    token = rows[("batch_run_failed", "token_limit_exceeded")]
    assert token["line"] is None and token["param"] is None
    assert token["status"] == "failed" and token["account"] == "default"
    assert rows[("batch_validation_failed", "missing_required_parameter")]["line"] == 7
    assert rows[("batch_validation_failed", "invalid_json")]["line"] == 3


# --- empty and partial databases ------------------------------------------------------------


def test_views_on_an_account_without_any_batch(tmp_path: Path) -> None:
    """The first extraction found nothing: no batches table yet, views still answer."""
    db = tmp_path / "empty.duckdb"
    extract(db, [])
    assert set(build_models(db)) >= PUBLIC_VIEWS
    got = views(db)
    for view in PUBLIC_VIEWS - {"active_batches", "statuses", "failure_rates_trailing"}:
        assert got[view] == [], view
    assert len(got["statuses"]) == 8
    (window,) = got["failure_rates_trailing"]  # the account's one-day window: nothing in it
    assert (window["days"], window["terminal"], window["failure_rate"]) == (1, 0, None)
    assert sorted((r["status"], r["batches"]) for r in got["active_batches"]) == sorted(
        (status, 0) for status in OPEN_STATUSES
    )
    assert got["as_of"][0]["as_of"] == recorded_as_of(db)

    # batches arrive later: the next build reads the real table
    extract(db, DEFAULT[:3])
    build_models(db)
    assert len(views(db)["batch_facts"]) == 3


def test_views_with_only_open_batches(tmp_path: Path) -> None:
    db = tmp_path / "open.duckdb"
    history = [b for b in DEFAULT if b["status"] not in TERMINAL]
    extract(db, history)
    build_models(db)
    got = views(db)
    assert got["failure_rates_daily"] == [] and got["duration_stats_daily"] == []
    assert got["batch_errors"] == []
    assert len(got["open_batches"]) == len(history) == 7
    active = {r["status"]: r["batches"] for r in got["active_batches"]}
    assert active == {"validating": 2, "in_progress": 2, "finalizing": 2, "cancelling": 1}
    facts = expected_facts({"default": history})
    hourly = expected_hourly(facts, recorded_as_of(db))
    assert_rows_equal(got["active_batches_hourly"], hourly, ("account", "hour"))


def test_active_batches_hourly_by_status_with_skipped_statuses(tmp_path: Path) -> None:
    """Missing intermediate timestamps: the status skipped lasts no time, the next one known
    takes over, and the statuses still add up to `active`."""
    db = tmp_path / "skipped.duckdb"
    history = [
        # never in_progress_at: validating until finalizing
        batch("batch_no_in_progress", "completed", T0 + 10 * MINUTE,
              finalizing=2 * HOUR, completed=3 * HOUR),
        # failed while validating
        batch("batch_failed_validating", "failed", T0 + 20 * MINUTE, failed=90 * MINUTE),
        # cancelled in progress: never finalizing
        batch("batch_cancelled_running", "cancelled", T0, in_progress=30 * MINUTE,
              cancelling=150 * MINUTE, cancelled=160 * MINUTE),
    ]  # fmt: skip
    extract(db, history)
    build_models(db)
    got = views(db)
    rows = got["active_batches_hourly_by_status"]
    at = lambda offset: datetime.fromtimestamp(T0 + offset, UTC)  # noqa: E731
    by_hour = {(r["hour"], r["status"]): r["batches"] for r in rows}
    order = ("validating", "in_progress", "finalizing")
    assert [by_hour[(at(HOUR), s)] for s in order] == [2, 1, 0]
    assert [by_hour[(at(2 * HOUR), s)] for s in order] == [1, 1, 0]
    assert [by_hour[(at(3 * HOUR), s)] for s in order] == [0, 0, 1]
    assert [by_hour[(at(4 * HOUR), s)] for s in order] == [0, 0, 0]
    assert_rows_equal(
        rows,
        expected_hourly_by_status(expected_facts({"default": history}), recorded_as_of(db)),
        ("account", "hour", "status"),
    )
    sums: dict[datetime, int] = defaultdict(int)
    for row in rows:
        sums[row["hour"]] += row["batches"]
    assert sums == {r["hour"]: r["active"] for r in got["active_batches_hourly"]}


def test_as_of_falls_back_to_the_latest_timestamp_without_extractions(tmp_path: Path) -> None:
    """A database loaded by other means has no extraction rows: the data dates itself."""
    db = tmp_path / "no_runs.duckdb"
    history = [b for b in DEFAULT if b["created_at"] < T0 + DAY]  # no "recent" batches
    extract(db, history)
    with duckdb.connect(str(db)) as connection:
        connection.execute("delete from openai_batches.extractions")
        build_models(connection)
    got = views(db)
    latest = max(b[k] for b in history for k in ("created_at", *STAGES) if b[k] is not None)
    assert latest == T0 + HOUR + 3 * DAY  # batch_slow_finalizing's completion
    assert got["as_of"] == [
        {
            "as_of": ts(latest),
            "as_of_source": "latest_batch_timestamp",
            "as_of_day": ts(latest).date(),
        }
    ]
    stuck = {r["batch_id"]: r for r in got["open_batches"]}["batch_stuck_validating"]
    assert stuck["hours_in_status"] == pytest.approx((latest - (T0 + 7 * HOUR)) / 3600)


def test_build_refuses_a_database_with_nothing_loaded(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        build_models(tmp_path / "missing.duckdb")
    db = tmp_path / "blank.duckdb"
    duckdb.connect(str(db)).close()
    with pytest.raises(UsageError, match="extract"):
        build_models(db)


# --- the runner -----------------------------------------------------------------------------


def test_models_are_built_after_what_they_read() -> None:
    order = [model.name for model in discover()]
    assert set(order) >= PUBLIC_VIEWS | {"as_of", "stg_batches", "stg_batch_errors"}
    for position, model in enumerate(discover()):
        assert model.depends_on <= set(order[:position]), model.name
    staging = [i for i, name in enumerate(order) if name.startswith("stg_")]
    assert staging == list(range(len(staging)))  # the staging layer first


def write_models(root: Path, models: dict[str, str]) -> Path:
    for name, sql in models.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    return root


def test_a_cycle_between_models_is_refused(tmp_path: Path) -> None:
    root = write_models(
        tmp_path / "sql",
        {
            "marts/a.sql": "select * from openai_batches.b",
            "marts/b.sql": "select * from openai_batches.a",
        },
    )
    with pytest.raises(BatchlensError, match="cycle"):
        discover(root)


def test_a_broken_model_leaves_the_previous_views_in_place(tmp_path: Path, golden_db: Path) -> None:
    db = tmp_path / "copy.duckdb"
    db.write_bytes(golden_db.read_bytes())
    root = write_models(
        tmp_path / "sql",
        {
            "staging/stg_batches.sql": "select 1 as batch_id",
            "marts/batch_facts.sql": "select * from openai_batches.no_such_table",
        },
    )
    with pytest.raises(BatchlensError, match="batch_facts"):
        build_models(db, root)
    # all or nothing: stg_batches was not replaced either
    assert len(views(db)["batch_facts"]) == len(DEFAULT) + len(TEAM_B)
    with duckdb.connect(str(db), read_only=True) as connection:
        columns = connection.execute("describe openai_batches.stg_batches").fetchall()
    assert len(columns) > 1


def test_the_sql_directory_can_be_overridden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_models(tmp_path / "elsewhere", {"marts/only.sql": "select 42 as answer"})
    monkeypatch.setenv("BATCHLENS_SQL_DIR", str(root))
    assert [model.name for model in discover()] == ["only"]


def test_views_on_a_table_loaded_before_columns_existed(tmp_path: Path) -> None:
    """A `batches` table from an older loader: no model, usage or request counts yet."""
    import duckdb

    from batchlens.views.build import build_models

    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema openai_batches")
        con.execute(
            "create table openai_batches.batches as select 'batch_1' as id, 'default' as account, "
            "'completed' as status, '/v1/embeddings' as endpoint, '24h' as completion_window, "
            "timestamptz '2026-01-01 00:00:00+00' as created_at, "
            "timestamptz '2026-01-01 00:10:00+00' as in_progress_at, "
            "timestamptz '2026-01-01 01:10:00+00' as completed_at, "
            "timestamptz '2026-01-02 00:00:00+00' as expires_at"
        )
    build_models(db)
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "select model, duration_s, request_total, total_tokens, error_count "
            "from openai_batches.batch_facts"
        ).fetchone()
        rates = con.execute(
            "select terminal, completed, request_total, request_failure_rate "
            "from openai_batches.failure_rates_daily"
        ).fetchall()
    assert row == (None, 3600.0, None, None, 0)
    assert rates == [(1, 1, 0, None)]
