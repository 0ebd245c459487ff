"""The terminal report at 80, 100 and 160 columns: every table fits, wraps whole words or
elides free text with "…"; ids, error codes, statuses, endpoints and model names are never
cut (issue 25, item 1).

The oracle is the same report rendered 2,000 columns wide, where nothing needs to wrap:
every word printed at a narrow width must be one of its words, or a word's start followed
by "…". A value cut in the middle ("rate_limi" / "_exceeded", "statu", "60.") is neither.
"""

from __future__ import annotations

import copy
import io
import re
from typing import Any

import pytest
from rich.console import Console

from batchlens.demo import run_demo
from batchlens.report.requests import ALL_FAILED_SHOWN
from batchlens.report.terminal import OPEN_BATCHES_SHOWN, OTHER_OPEN_SHOWN, collect, render

WIDTHS = (80, 100, 160)
RULES = re.compile(r"^[─━┃│╇┼┿╋ ]+$")  # the tables' rules and separators are not words
LONG_MODEL = "ft:gpt-4o-mini-2024-07-18:acme-research-lab:nightly-eval:9xYzAbCd"
LONG_CODE = "gateway_upstream_provider_rejected_the_request_body"
LONG_URL = "https://platform.openai.com/docs/guides/batch/" + "very-long-path-segment-" * 4 + "x"


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What `batchlens demo` reports: its own database, made the way it makes it."""
    db = tmp_path_factory.mktemp("width") / "demo.duckdb"
    assert run_demo(db, batches=600) == 0
    return collect(db, 30)


def long_values(data: dict[str, Any]) -> dict[str, Any]:
    """The demo's report with two accounts and values longer than any column can hold."""
    data = copy.deepcopy(data)
    data["active"].append({**data["active"][0], "account": "research-team-europe"})
    flagged = {**data["open_batches"]["batches"][0], "account": "research-team-europe",
               "batch_id": "batch_0123456789abcdef01234567", "model": LONG_MODEL,
               "is_long_finalizing": True, "is_overdue": True}  # fmt: skip
    data["open_batches"]["batches"].insert(0, flagged)
    data["durations"].append(
        {**data["durations"][0], "account": "research-team-europe", "model": LONG_MODEL}
    )
    data["error_codes"].insert(
        0, {"code": LONG_CODE, "entries": 3, "batches": 2, "example_message": f"See {LONG_URL}"}
    )
    data["spend"]["windows"].append(
        {**data["spend"]["windows"][0], "account": "research-team-europe", "model": LONG_MODEL}
    )
    codes = data["request_errors"]["codes"]
    codes.insert(0, {**codes[0], "error_code": LONG_CODE, "example_message": LONG_URL})
    every = data["request_errors"]["all_failed_batches"]
    every.insert(0, {**every[0], "top_request_error_code": LONG_CODE})
    return data


def rendered(data: dict[str, Any], width: int) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    render(data, console)
    return console.export_text()


def words(text: str) -> list[str]:
    # a label may end in ":" where the table's header does not
    return [word.rstrip(":") for word in text.split() if not RULES.match(word)]


def whole_values(data: dict[str, Any]) -> set[str]:
    """Every id, code, status, endpoint and model name the tables show."""
    batches = data["open_batches"]["batches"]
    flagged = [row for row in batches if row["is_overdue"] or row["is_long_finalizing"]]
    others = [row for row in batches if row not in flagged]
    shown = flagged[:OPEN_BATCHES_SHOWN] + others[:OTHER_OPEN_SHOWN]
    values = {row["batch_id"] for row in shown} | {row["status"] for row in shown}
    values |= {row[name] for row in shown for name in ("endpoint", "model")}
    values |= {row[name] for row in data["durations"] for name in ("endpoint", "model")}
    values |= {row["account"] for row in data["active"]}
    values |= {row["code"] for row in data["error_codes"]}
    values |= {row["model"] for row in data["spend"]["windows"]}
    values |= {row["model"] for row in data["spend"]["unpriced_models"]}
    values |= {row["latest_batch_id"] for row in data["spend"]["unpriced_models"]}
    values |= {row["error_code"] for row in data["request_errors"]["codes"]}
    every = data["request_errors"]["all_failed_batches"][:ALL_FAILED_SHOWN]
    values |= {row["batch_id"] for row in every} | {row["top_request_error_code"] for row in every}
    return {value for value in values if value}


def assert_nothing_cut(data: dict[str, Any], width: int) -> None:
    text = rendered(data, width)
    lines = text.splitlines()
    too_wide = [line for line in lines if len(line) > width]
    assert not too_wide, too_wide
    cut = sorted(value for value in whole_values(data) if not any(value in line for line in lines))
    assert not cut, f"cut or wrapped at {width} columns: {cut}"
    reference = set(words(rendered(data, 2000)))
    printed = words(text)
    broken = [
        word
        for word in printed
        if word not in reference
        and not (word.endswith("…") and any(ref.startswith(word[:-1]) for ref in reference))
    ]
    assert not broken, f"words cut without '…' at {width} columns: {broken[:20]}"
    elided = [word[:-1] for word in printed if word.endswith("…")]
    missing = [
        word
        for word in reference
        if word not in printed and not any(word.startswith(start) for start in elided)
    ]
    assert not missing, f"words lost at {width} columns: {missing[:20]}"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demo_report_is_never_cut(demo_data: dict[str, Any], width: int) -> None:
    assert_nothing_cut(demo_data, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_values_longer_than_a_column_are_never_cut(demo_data: dict[str, Any], width: int) -> None:
    data = long_values(demo_data)
    assert_nothing_cut(data, width)
    text = rendered(data, width)
    assert LONG_URL not in text.replace("\n", "") or width >= len(LONG_URL) + 40
    assert "…" in text  # the URL in a message is elided where it cannot fit


def test_a_wide_terminal_shows_tables(demo_data: dict[str, Any]) -> None:
    """At 160 columns every section is a table: one header line per table, no stacking."""
    text = rendered(demo_data, 160)
    header = next(line for line in text.splitlines() if line.lstrip().startswith("batch "))
    assert "status" in header and "model" in header and "hours in status" in header
