"""Pages of Batch objects to Arrow tables: types, flattening, odd providers, new fields."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa

from openai_batches.tables import batches_table, errors_table, to_seconds

UTC = dt.UTC


def full_batch() -> dict:
    return {
        "id": "batch_a",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "model": "gpt-4o-mini",
        "input_file_id": "file-1",
        "completion_window": "24h",
        "status": "completed",
        "output_file_id": "file-2",
        "error_file_id": None,
        "created_at": 1_700_000_000,
        "in_progress_at": 1_700_000_060,
        "expires_at": 1_700_086_400,
        "finalizing_at": 1_700_003_000,
        "completed_at": 1_700_003_600,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 10, "completed": 9, "failed": 1},
        "usage": {
            "input_tokens": 100,
            "input_tokens_details": {"cached_tokens": 20},
            "output_tokens": 50,
            "output_tokens_details": {"reasoning_tokens": 5},
            "total_tokens": 150,
        },
        "metadata": {"team": "search", "job": "nightly"},
        "errors": None,
    }


def test_flattens_and_types_every_field() -> None:
    row = batches_table([full_batch()], "acme").to_pylist()[0]
    assert row["id"] == "batch_a"
    assert row["account"] == "acme"
    assert row["created_at"] == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert row["completed_at"] - row["in_progress_at"] == dt.timedelta(seconds=3540)
    assert row["request_counts__failed"] == 1
    assert row["usage__input_tokens_details__cached_tokens"] == 20
    assert row["usage__output_tokens_details__reasoning_tokens"] == 5
    assert json.loads(row["metadata"]) == {"team": "search", "job": "nightly"}


def test_missing_optional_fields_are_typed_nulls() -> None:
    sparse = {"id": "batch_b", "status": "validating", "created_at": 1_700_000_000}
    table = batches_table([sparse], "default")
    row = table.to_pylist()[0]
    assert row["model"] is None and row["usage__total_tokens"] is None
    assert row["request_counts__total"] is None and row["metadata"] is None
    assert table.schema.field("completed_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("usage__total_tokens").type == pa.int64()
    assert not table.schema.field("id").nullable


def test_milliseconds_become_seconds() -> None:
    assert to_seconds(1_700_000_000_123) == 1_700_000_000
    assert to_seconds(1_700_000_000) == 1_700_000_000
    assert to_seconds(1_700_000_000.9) == 1_700_000_000
    assert to_seconds(None) is None and to_seconds("soon") is None and to_seconds(True) is None


def test_a_field_the_api_adds_later_becomes_a_column() -> None:
    batches = [
        {**full_batch(), "priority": 3, "labels": {"a": 1}},
        {**full_batch(), "id": "batch_c"},
        {**full_batch(), "id": "batch_d", "priority": "high"},  # mixed types: kept as text
    ]
    table = batches_table(batches, "default")
    assert table.column("labels").to_pylist() == ['{"a":1}', None, None]
    assert table.column("priority").to_pylist() == ["3", None, "high"]


def test_errors_rows_keep_position_and_nulls() -> None:
    failed = {
        **full_batch(),
        "status": "failed",
        "errors": {
            "object": "list",
            "data": [
                {"code": "invalid_json", "message": "Line 3 is not JSON", "param": None, "line": 3},
                {
                    "code": "token_limit_exceeded",
                    "message": "Too many",
                    "param": None,
                    "line": None,
                },
            ],
        },
    }
    rows = errors_table([full_batch(), failed], "default").to_pylist()
    assert [(r["batch_id"], r["position"], r["code"], r["line"]) for r in rows] == [
        ("batch_a", 0, "invalid_json", 3),
        ("batch_a", 1, "token_limit_exceeded", None),
    ]
    assert errors_table([full_batch()], "default").num_rows == 0


def test_fast_and_tolerant_paths_agree_on_well_formed_pages() -> None:
    from openai_batches.tables import fast_columns, tolerant_columns

    sparse = {"id": "batch_b", "status": "validating", "created_at": 1_700_000_000_000}
    page = [full_batch(), sparse, {**full_batch(), "id": "batch_c", "usage": None}]
    fast, tolerant = fast_columns(page), tolerant_columns(page)
    assert fast.keys() == tolerant.keys()
    for name in fast:
        assert fast[name].to_pylist() == tolerant[name].to_pylist(), name


def test_a_page_with_odd_values_loads_through_the_tolerant_path() -> None:
    odd = {
        **full_batch(),
        "created_at": 1_700_000_000.75,  # a float
        "request_counts": {"total": "10", "completed": 9, "failed": 1},  # a string count
    }
    row = batches_table([odd], "default").to_pylist()[0]
    assert row["created_at"] == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert row["request_counts__total"] is None and row["request_counts__completed"] == 9


def test_provider_status_words_are_mapped_and_kept() -> None:
    words = ["InProgress", "JOB_STATE_SUCCEEDED", "stopped", "complete", "Mystery"]
    page = [{**full_batch(), "id": f"b{i}", "status": w} for i, w in enumerate(words)]
    table = batches_table(page, "default")
    assert table.column("status").to_pylist() == [
        "in_progress",
        "completed",
        "cancelled",
        "completed",
        "mystery",
    ]
    assert table.column("status_raw").to_pylist() == words
