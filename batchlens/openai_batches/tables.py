"""Turns pages of Batch objects into Arrow tables, column by column.

dlt normalizes Python dicts row by row, which costs more than fetching them. Arrow tables
skip that step, so the loader flattens the few nested objects itself, with fixed types:
the columns exist with the right type even when every value so far is null.

Well-formed pages take a fast path (one C++ conversion of the whole list into a struct
array); a page with an odd value (a float timestamp, a string count) takes the tolerant
path, which checks every value in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .providers import map_status
from .settings import (
    KNOWN_FIELDS,
    MILLISECONDS_THRESHOLD,
    REQUEST_COUNT_FIELDS,
    STRING_FIELDS,
    TIMESTAMP_FIELDS,
    USAGE_FIELDS,
)

# Microseconds, not seconds: dlt maps second precision to a DuckDB type without time zone.
TIMESTAMP = pa.timestamp("us", tz="UTC")

_COUNTS = pa.struct([(name, pa.int64()) for name in REQUEST_COUNT_FIELDS])
_USAGE = pa.struct(
    [
        ("input_tokens", pa.int64()),
        ("input_tokens_details", pa.struct([("cached_tokens", pa.int64())])),
        ("output_tokens", pa.int64()),
        ("output_tokens_details", pa.struct([("reasoning_tokens", pa.int64())])),
        ("total_tokens", pa.int64()),
    ]
)
_BATCH = pa.struct(
    [(name, pa.string()) for name in STRING_FIELDS]
    + [(name, pa.int64()) for name in TIMESTAMP_FIELDS]
    + [("request_counts", _COUNTS), ("usage", _USAGE)]
)


def to_seconds(value: Any) -> int | None:
    """Unix seconds; providers behind a gateway send milliseconds, or floats."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = int(value)
    return seconds // 1000 if seconds >= MILLISECONDS_THRESHOLD else seconds


def batches_table(batches: Sequence[dict], account: str) -> pa.Table:
    """One row per batch: the flat fields, `request_counts__*`, `usage__*`, JSON metadata."""
    try:
        columns = _fast_columns(batches)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        columns = _tolerant_columns(batches)
    raw = columns["status"].to_pylist()
    columns["status"] = pa.array([map_status(s)[0] for s in raw], pa.string())
    columns["status_raw"] = pa.array(raw, pa.string())
    columns["metadata"] = pa.array(
        [_json_or_none(b.get("metadata")) for b in batches], pa.binary()
    ).cast(pa.string())
    columns["account"] = pa.array([account] * len(batches), pa.string())
    keys: set[str] = set()
    for batch in batches:
        keys.update(batch)
    for name in sorted(keys - KNOWN_FIELDS):
        columns[name] = _extra_column([b.get(name) for b in batches])
    return _table(columns, keys=("id", "account"))


def _fast_columns(batches: Sequence[dict]) -> dict[str, pa.Array]:
    """The whole page in one conversion; raises on any value of an unexpected type."""
    flat = pa.Table.from_struct_array(pa.array(batches, type=_BATCH)).flatten().flatten()
    columns: dict[str, pa.Array] = {}
    for name, column in zip(flat.column_names, flat.columns, strict=True):
        array = column.combine_chunks()
        if name in TIMESTAMP_FIELDS:
            array = _timestamps(array)
        columns[name.replace(".", "__")] = array
    return columns


def _timestamps(seconds_or_ms: pa.Array) -> pa.Array:
    is_ms = pc.greater_equal(seconds_or_ms, MILLISECONDS_THRESHOLD)
    seconds = pc.if_else(is_ms, pc.divide(seconds_or_ms, 1000), seconds_or_ms)
    return seconds.cast(pa.timestamp("s", tz="UTC")).cast(TIMESTAMP)


def _tolerant_columns(batches: Sequence[dict]) -> dict[str, pa.Array]:
    """Value by value: wrong types become nulls instead of failing the page."""
    columns: dict[str, pa.Array] = {
        name: pa.array([_str_or_none(b.get(name)) for b in batches], pa.string())
        for name in STRING_FIELDS
    }
    for name in TIMESTAMP_FIELDS:
        seconds = pa.array([to_seconds(b.get(name)) for b in batches], pa.timestamp("s", tz="UTC"))
        columns[name] = seconds.cast(TIMESTAMP)
    for name in REQUEST_COUNT_FIELDS:
        columns[f"request_counts__{name}"] = pa.array(
            [_int_or_none(_nested(b, ("request_counts", name))) for b in batches], pa.int64()
        )
    for path in USAGE_FIELDS:
        columns["usage__" + "__".join(path)] = pa.array(
            [_int_or_none(_nested(b, ("usage", *path))) for b in batches], pa.int64()
        )
    return columns


def _nested(batch: dict, path: Sequence[str]) -> Any:
    value: Any = batch
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _json_or_none(value: Any) -> bytes | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _extra_column(values: list[Any]) -> pa.Array:
    """A field the API added later: keep its type when Arrow can infer one, else JSON text."""
    if any(isinstance(v, dict | list) for v in values):
        return pa.array([_json_or_none(v) for v in values], pa.binary()).cast(pa.string())
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _table(columns: dict[str, pa.Array], keys: Sequence[str]) -> pa.Table:
    """Key columns are declared non-nullable, as dlt's primary-key hints say they are."""
    fields = [
        pa.field(name, array.type, nullable=name not in keys) for name, array in columns.items()
    ]
    return pa.Table.from_arrays(list(columns.values()), schema=pa.schema(fields))


def errors_table(batches: Sequence[dict], account: str) -> pa.Table:
    """One row per entry of `errors.data`, keyed by batch and position."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("account", "batch_id", "position", "code", "message", "param", "line")
    }
    for batch in batches:
        entries = _nested(batch, ("errors", "data")) or []
        for position, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            rows["account"].append(account)
            rows["batch_id"].append(batch["id"])
            rows["position"].append(position)
            for key in ("code", "message", "param"):
                rows[key].append(_str_or_none(entry.get(key)))
            rows["line"].append(_int_or_none(entry.get("line")))
    types = {"position": pa.int64(), "line": pa.int64()}
    columns = {
        name: pa.array(values, types.get(name, pa.string())) for name, values in rows.items()
    }
    return _table(columns, keys=("account", "batch_id", "position"))
