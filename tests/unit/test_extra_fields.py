"""Fields the API adds inside objects, and values of an unexpected type, are never lost.

Pages are hand-made here: each expected value is read off the batch the test wrote.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from test_tables import full_batch

from batchlens.simulator.faults import with_new_fields, with_odd_types
from openai_batches.extra_fields import FieldKeeper
from openai_batches.settings import (
    REQUEST_COUNT_FIELDS,
    STRING_FIELDS,
    TIMESTAMP_FIELDS,
    USAGE_FIELDS,
)
from openai_batches.tables import batches_table, errors_table


def odd(row: dict) -> dict | None:
    value = row["unexpected_values"]
    return None if value is None else json.loads(value)


def failed_batch(**entry_fields: object) -> dict:
    entry = {"code": "invalid_json", "message": "Line 3 is not JSON", "param": None, "line": 3}
    return {
        **full_batch(),
        "status": "failed",
        "errors": {"object": "list", "data": [{**entry, **entry_fields}]},
    }


def test_a_new_field_in_request_counts_becomes_a_typed_column() -> None:
    batch = full_batch()
    batch["request_counts"] = {**batch["request_counts"], "expired_n": 4, "expiredShare": 0.5}
    page = [batch, {**full_batch(), "id": "batch_b"}]
    keeper = FieldKeeper()
    table = batches_table(page, "default", keeper)
    assert table.column("request_counts__expired_n").to_pylist() == [4, None]
    assert table.schema.field("request_counts__expired_n").type == pa.int64()
    assert table.column("request_counts__expired_share").to_pylist() == [0.5, None]
    assert table.column("request_counts__total").to_pylist() == [10, 10]
    assert table.column("unexpected_values").to_pylist() == [None, None]
    assert [(c.field, c.column, c.data_type) for c in keeper.new_columns] == [
        ("request_counts.expiredShare", "request_counts__expired_share", "double"),
        ("request_counts.expired_n", "request_counts__expired_n", "bigint"),
    ]


def test_new_fields_in_usage_at_any_depth_become_columns() -> None:
    batch = full_batch()
    batch["usage"] = {
        **batch["usage"],
        "input_tokens_details": {"cached_tokens": 20, "audio_tokens": 7},
        "server_tools": {"web_search": {"calls": 2, "engine": "bing"}},
        "modalities": ["text", "audio"],
    }
    row = batches_table([batch], "default").to_pylist()[0]
    assert row["usage__input_tokens_details__cached_tokens"] == 20
    assert row["usage__input_tokens_details__audio_tokens"] == 7
    assert row["usage__server_tools__web_search__calls"] == 2
    assert row["usage__server_tools__web_search__engine"] == "bing"
    assert json.loads(row["usage__modalities"]) == ["text", "audio"]  # a list: JSON text
    assert row["unexpected_values"] is None


def test_a_new_field_in_an_errors_entry_becomes_a_column() -> None:
    page = [failed_batch(retryable=False, details={"row": 3}), full_batch()]
    keeper = FieldKeeper()
    rows = errors_table(page, "default", keeper).to_pylist()
    assert len(rows) == 1
    assert rows[0]["retryable"] is False and rows[0]["details__row"] == 3
    assert rows[0]["code"] == "invalid_json" and rows[0]["unexpected_values"] is None
    assert {(c.table, c.field, c.column) for c in keeper.new_columns} == {
        ("batches__errors__data", "errors.data[].retryable", "retryable"),
        ("batches__errors__data", "errors.data[].details.row", "details__row"),
    }


def test_a_value_of_the_wrong_type_is_null_in_its_column_and_kept_as_sent() -> None:
    batch = full_batch()
    batch["request_counts"] = {"total": "10", "completed": 9, "failed": 1.5}
    batch["usage"] = {**batch["usage"], "output_tokens_details": "n/a"}
    batch["completed_at"] = "yesterday"
    keeper = FieldKeeper()
    row = batches_table([batch, full_batch()], "default", keeper).to_pylist()[0]
    assert row["request_counts__total"] is None and row["request_counts__completed"] == 9
    assert row["request_counts__failed"] is None
    assert row["usage__output_tokens_details__reasoning_tokens"] is None
    assert row["completed_at"] is None
    assert odd(row) == {
        "request_counts.total": "10",
        "request_counts.failed": 1.5,
        "usage.output_tokens_details": "n/a",
        "completed_at": "yesterday",
    }
    assert keeper.unexpected == set(odd(row))


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("request_counts", ("failed",)),
        ("usage", ("input_tokens",)),
        ("usage", ("output_tokens_details", "reasoning_tokens")),
    ],
)
def test_a_fraction_alone_is_kept_as_sent_not_truncated(where: str, path: tuple) -> None:
    """A page whose only odd value is a float: Arrow's one-shot conversion would make 3."""
    batch = full_batch()
    target = batch[where]
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = 3.5
    row = batches_table([full_batch(), batch], "default").to_pylist()[1]
    assert row["__".join((where, *path))] is None
    assert odd(row) == {".".join((where, *path)): 3.5}


def test_a_nested_object_that_is_not_an_object_is_kept() -> None:
    batch = {**full_batch(), "request_counts": "pending", "usage": [1, 2]}
    row = batches_table([batch], "default").to_pylist()[0]
    assert row["request_counts__total"] is None and row["usage__total_tokens"] is None
    assert odd(row) == {"request_counts": "pending", "usage": [1, 2]}


def test_odd_values_in_an_errors_entry_are_kept() -> None:
    page = [{**failed_batch(line="3a", code=404)}]
    page[0]["errors"]["data"].append("disk full")  # an entry that is not an object
    rows = errors_table(page, "default").to_pylist()
    assert [(r["position"], r["line"], r["code"]) for r in rows] == [
        (0, None, "404"),
        (1, None, None),
    ]
    assert odd(rows[0]) == {"errors.data[].line": "3a", "errors.data[].code": 404}
    assert odd(rows[1]) == {"errors.data[]": "disk full"}


def test_a_column_keeps_the_type_an_earlier_run_gave_it() -> None:
    """A later string in a bigint column would fail the load: it is kept aside instead."""
    keeper = FieldKeeper({"batches": {"request_counts__expired_n": "bigint", "priority": "bigint"}})
    batch = full_batch()
    batch["request_counts"] = {**batch["request_counts"], "expired_n": "many"}
    page = [{**batch, "priority": "high"}, {**full_batch(), "id": "batch_b", "priority": 2}]
    table = batches_table(page, "default", keeper)
    assert table.column("request_counts__expired_n").to_pylist() == [None, None]
    assert table.column("priority").to_pylist() == [None, 2]
    assert odd(table.to_pylist()[0]) == {"request_counts.expired_n": "many", "priority": "high"}
    assert keeper.new_columns == []


def test_every_chunk_of_a_run_types_a_new_field_alike() -> None:
    keeper = FieldKeeper()
    first = full_batch()
    first["request_counts"] = {**first["request_counts"], "expired_n": 1}
    second = {**full_batch(), "id": "batch_b"}
    second["request_counts"] = {**second["request_counts"], "expired_n": "one"}
    batches_table([first], "default", keeper)
    table = batches_table([second], "default", keeper)
    assert table.schema.field("request_counts__expired_n").type == pa.int64()
    assert odd(table.to_pylist()[0]) == {"request_counts.expired_n": "one"}
    assert len(keeper.new_columns) == 1


def test_a_field_that_would_overwrite_a_column_is_kept_aside() -> None:
    batch = full_batch()
    batch["request_counts"] = {**batch["request_counts"], "Total": 99}  # -> request_counts__total
    batch["account"] = "someone-else"
    batch["_dlt_id"] = "x"
    batch["_batchlens_hash"] = "y"  # the digest of the object, added by the loader
    row = batches_table([batch], "acme").to_pylist()[0]
    assert row["account"] == "acme" and row["request_counts__total"] == 10
    assert "_batchlens_hash" not in row
    assert odd(row) == {
        "request_counts.Total": 99,
        "account": "someone-else",
        "_dlt_id": "x",
        "_batchlens_hash": "y",
    }


def test_nulls_only_make_no_column_yet() -> None:
    batch = full_batch()
    batch["request_counts"] = {**batch["request_counts"], "expired_n": None}
    table = batches_table([batch], "default")
    assert "request_counts__expired_n" not in table.column_names


def test_a_normal_page_gains_only_an_empty_unexpected_values_column() -> None:
    page = [full_batch(), {**full_batch(), "id": "batch_b", "usage": None}]
    table = batches_table(page, "default")
    assert table.column("unexpected_values").null_count == 2
    known = {
        *STRING_FIELDS,
        *TIMESTAMP_FIELDS,
        *(f"request_counts__{name}" for name in REQUEST_COUNT_FIELDS),
        *("usage__" + "__".join(path) for path in USAGE_FIELDS),
        *("status_raw", "metadata", "account", "unexpected_values"),
    }
    assert set(table.column_names) == known


def test_notes_name_each_field_once_and_escape_control_characters() -> None:
    keeper = FieldKeeper()
    batch = full_batch()
    batch["request_counts"] = {"total": "10", "completed": 9, "failed": 1, "new\x1b[2J": 1}
    batches_table([batch], "default", keeper)
    batches_table([{**batch, "id": "batch_b"}], "default", keeper)
    lines = keeper.notes()
    assert lines == [
        "new field request_counts.new\\x1b[2J stored as column "
        "batches.request_counts__new_2_j (bigint)",
        "field request_counts.total sent with a value of an unexpected type: "
        "kept as sent in unexpected_values, NULL in its typed column",
    ]
    assert keeper.notes(already_noted={"request_counts.total"}) == lines[:1]


@pytest.mark.parametrize("alter", [with_new_fields, with_odd_types])
def test_the_simulator_faults_leave_the_known_fields_alone(alter) -> None:
    batch = failed_batch()
    shown = alter(batch)
    assert shown is not batch and batch == failed_batch()  # the original is not mutated
    assert shown["id"] == batch["id"] and shown["status"] == batch["status"]
    assert shown["request_counts"]["completed"] == 9


def test_the_known_nested_fields_are_the_ones_the_fast_path_types() -> None:
    """Else a field typed by the fast path would count as new, or a new one go unnoticed."""
    from openai_batches.tables import BATCH_STRUCT, NESTED_OBJECTS

    def tree(arrow_type: pa.StructType) -> dict:
        return {
            field.name: tree(field.type) if pa.types.is_struct(field.type) else None
            for field in arrow_type
        }

    typed = {name: tree(BATCH_STRUCT.field(name).type) for name in NESTED_OBJECTS}
    assert typed == NESTED_OBJECTS
