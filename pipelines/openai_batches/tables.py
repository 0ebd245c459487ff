"""Turns pages of Batch objects into Arrow tables, column by column.

dlt normalizes Python dicts row by row, which costs more than fetching them. Arrow tables
skip that step, so the loader flattens the few nested objects itself, with fixed types:
the columns exist with the right type even when every value so far is null.

Well-formed pages take a fast path (one C++ conversion of the whole list into a struct
array); a page with an odd value (a float timestamp, a string count) takes the tolerant
path, which checks every value in Python. Fields nobody knew of and values of the wrong
type are kept too (see `extra_fields.py`): the fast path only looks for unknown keys, and
walks the nested objects in Python when it finds one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .extra_fields import (
    UNEXPECTED_COLUMN,
    FieldKeeper,
    FieldPath,
    KnownTree,
    by_row,
    unexpected_column,
    walk,
)
from .providers import map_status
from .settings import (
    BATCHES_TABLE,
    ERROR_FIELDS,
    ERRORS_TABLE,
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
# The nested objects as batchlens types them; any other field inside is an extra one.
_KNOWN_COUNTS: KnownTree = dict.fromkeys(REQUEST_COUNT_FIELDS)


def _known_tree(paths: Sequence[tuple[str, ...]]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = None
    return tree


_KNOWN_USAGE: KnownTree = _known_tree(USAGE_FIELDS)
NESTED_OBJECTS: dict[str, KnownTree] = {"request_counts": _KNOWN_COUNTS, "usage": _KNOWN_USAGE}
# The keys `_keys` collects, in its order, and the ones batchlens types.
_NESTED_KEYS = (
    frozenset(_KNOWN_COUNTS),
    frozenset(_KNOWN_USAGE),
    frozenset(_KNOWN_USAGE["input_tokens_details"]),
    frozenset(_KNOWN_USAGE["output_tokens_details"]),
)
_ERROR_KNOWN: KnownTree = dict.fromkeys(ERROR_FIELDS)

BATCH_STRUCT = pa.struct(
    [(name, pa.string()) for name in STRING_FIELDS]
    + [(name, pa.int64()) for name in TIMESTAMP_FIELDS]
    + [("request_counts", _COUNTS), ("usage", _USAGE)]
)


# Each stored batch keeps a digest of the object the API sent: a `--full` run skips the
# batches whose object did not change (almost all of a long history), so it merges only
# what changed. The version is part of it: a loader that maps fields differently bumps it,
# and every batch is loaded again once.
HASH_COLUMN = "_batchlens_hash"
HASH_VERSION = b"1"


def content_hash(batch: dict) -> str:
    """A digest of the Batch object as sent (keys sorted), stable across runs."""
    encoded = orjson.dumps(batch, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(HASH_VERSION + encoded, digest_size=8).hexdigest()


def to_seconds(value: Any) -> int | None:
    """Unix seconds; providers behind a gateway send milliseconds, or floats."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = int(value)
    return seconds // 1000 if seconds >= MILLISECONDS_THRESHOLD else seconds


def batches_table(
    batches: Sequence[dict], account: str, keeper: FieldKeeper | None = None
) -> pa.Table:
    """One row per batch: the flat fields, `request_counts__*`, `usage__*`, JSON metadata,
    a column per field the API added, and `unexpected_values` for values of the wrong type."""
    keeper = keeper or FieldKeeper()
    odd: dict[int, dict[str, Any]] = {}  # row -> {field path: value as sent}
    try:
        columns: dict[str, pa.Array] | None = fast_columns(batches)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        columns = None
    if columns is not None:
        keys, nested_keys, fraction = _keys(batches, nested=True)
        if fraction:  # Arrow truncated 3.5 to 3 without a word: keep it as sent instead
            columns = None
    tolerant = columns is None
    if columns is None:
        columns = tolerant_columns(batches, odd, keeper)
        keys, nested_keys, _ = _keys(batches, nested=False)
    raw = columns["status"].to_pylist()
    columns["status"] = pa.array([map_status(s)[0] for s in raw], pa.string())
    columns["status_raw"] = pa.array(raw, pa.string())
    columns["metadata"] = pa.array(
        [_json_or_none(b.get("metadata")) for b in batches], pa.binary()
    ).cast(pa.string())
    columns["account"] = pa.array([account] * len(batches), pa.string())
    # the tolerant path's objects may hold anything, so they are always walked
    nested_extras = tolerant or any(
        not found <= known for found, known in zip(nested_keys, _NESTED_KEYS, strict=True)
    )
    if nested_extras:
        found: dict[FieldPath, dict[int, Any]] = {}
        for row, batch in enumerate(batches):
            for name, known in NESTED_OBJECTS.items():
                walk(batch.get(name), known, (name,), row, found, odd, keeper)
        reserved = [*columns, UNEXPECTED_COLUMN]
        columns.update(keeper.columns(BATCHES_TABLE, by_row(found, len(batches)), odd, reserved))
    top_level = {(name,): [b.get(name) for b in batches] for name in keys - KNOWN_FIELDS}
    reserved = [*columns, UNEXPECTED_COLUMN]
    columns.update(keeper.columns(BATCHES_TABLE, top_level, odd, reserved))
    columns[UNEXPECTED_COLUMN] = unexpected_column(odd, len(batches))
    return _table(columns, keys=("id", "account"))


def _keys(batches: Sequence[dict], nested: bool) -> tuple[set[str], list[set[str]], bool]:
    """The page's top-level keys and, with `nested`, the keys of `request_counts`, `usage`
    and its two details objects, and whether any of their values is a float (a count with
    a fraction, which the fast path truncates): one plain loop, the cheapest way found to
    look at them (`map`/`filter` with `methodcaller` measured slower). `nested` only after
    the fast path, which proved every nested object a dict or None."""
    keys: set[str] = set()
    found: list[set[str]] = [set(), set(), set(), set()]
    if not nested:
        for batch in batches:
            keys.update(batch)
        return keys, found, False
    counts_keys, usage_keys, input_keys, output_keys = found
    fraction = False
    for batch in batches:
        keys.update(batch)
        counts = batch.get("request_counts")
        if counts:
            counts_keys.update(counts)
            fraction = fraction or float in map(type, counts.values())
        usage = batch.get("usage")
        if usage:
            usage_keys.update(usage)
            fraction = fraction or float in map(type, usage.values())
            details = usage.get("input_tokens_details")
            if details:
                input_keys.update(details)
                fraction = fraction or float in map(type, details.values())
            details = usage.get("output_tokens_details")
            if details:
                output_keys.update(details)
                fraction = fraction or float in map(type, details.values())
    return keys, found, fraction


def fast_columns(batches: Sequence[dict]) -> dict[str, pa.Array]:
    """The whole page in one conversion; raises on any value of an unexpected type."""
    flat = pa.Table.from_struct_array(pa.array(batches, type=BATCH_STRUCT)).flatten().flatten()
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


def tolerant_columns(
    batches: Sequence[dict],
    odd: dict[int, dict[str, Any]] | None = None,
    keeper: FieldKeeper | None = None,
) -> dict[str, pa.Array]:
    """Value by value: a wrong type becomes NULL instead of failing the page, and the value
    as sent goes to `odd` (the row's `unexpected_values`)."""
    odd = {} if odd is None else odd
    keeper = keeper or FieldKeeper()

    def checked(field: str, values: list[Any], convert: Any, sent_as: type = object) -> list:
        kept = [convert(value) for value in values]
        for row, (value, stored) in enumerate(zip(values, kept, strict=True)):
            if value is not None and (stored is None or not isinstance(value, sent_as)):
                keeper.keep_odd(odd, row, field, value)
        return kept

    columns: dict[str, pa.Array] = {
        name: pa.array(
            checked(name, [b.get(name) for b in batches], _str_or_none, str), pa.string()
        )
        for name in STRING_FIELDS
    }
    for name in TIMESTAMP_FIELDS:
        values = checked(name, [b.get(name) for b in batches], to_seconds)
        columns[name] = pa.array(values, pa.timestamp("s", tz="UTC")).cast(TIMESTAMP)
    for name in REQUEST_COUNT_FIELDS:
        values = [_nested(b, ("request_counts", name)) for b in batches]
        columns[f"request_counts__{name}"] = pa.array(
            checked(f"request_counts.{name}", values, _int_or_none), pa.int64()
        )
    for path in USAGE_FIELDS:
        values = [_nested(b, ("usage", *path)) for b in batches]
        columns["usage__" + "__".join(path)] = pa.array(
            checked(".".join(("usage", *path)), values, _int_or_none), pa.int64()
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


def _table(columns: dict[str, pa.Array], keys: Sequence[str]) -> pa.Table:
    """Key columns are declared non-nullable, as dlt's primary-key hints say they are."""
    fields = [
        pa.field(name, array.type, nullable=name not in keys) for name, array in columns.items()
    ]
    return pa.Table.from_arrays(list(columns.values()), schema=pa.schema(fields))


def errors_table(
    batches: Sequence[dict], account: str, keeper: FieldKeeper | None = None
) -> pa.Table:
    """One row per entry of `errors.data`, keyed by batch and position.

    A field the API adds to an entry becomes a column; an entry that is not an object, or a
    value of the wrong type, is kept in the row's `unexpected_values`.
    """
    keeper = keeper or FieldKeeper()
    rows: dict[str, list[Any]] = {
        k: [] for k in ("account", "batch_id", "position", "code", "message", "param", "line")
    }
    odd: dict[int, dict[str, Any]] = {}
    found: dict[FieldPath, dict[int, Any]] = {}
    for batch in batches:
        entries = _nested(batch, ("errors", "data"))
        for position, entry in enumerate(entries if isinstance(entries, list) else []):
            row = len(rows["account"])
            rows["account"].append(account)
            rows["batch_id"].append(batch["id"])
            rows["position"].append(position)
            if not isinstance(entry, dict):
                keeper.keep_odd(odd, row, "errors.data[]", entry)
                entry = {}
            for key in ("code", "message", "param"):
                value = entry.get(key)
                if value is not None and not isinstance(value, str):
                    keeper.keep_odd(odd, row, f"errors.data[].{key}", value)
                rows[key].append(_str_or_none(value))
            line = entry.get("line")
            rows["line"].append(_int_or_none(line))
            if line is not None and _int_or_none(line) is None:
                keeper.keep_odd(odd, row, "errors.data[].line", line)
            if not entry.keys() <= _ERROR_KNOWN.keys():
                walk(entry, _ERROR_KNOWN, (), row, found, odd, keeper)
    types = {"position": pa.int64(), "line": pa.int64()}
    columns = {
        name: pa.array(values, types.get(name, pa.string())) for name, values in rows.items()
    }
    count = len(rows["account"])
    columns.update(
        keeper.columns(
            ERRORS_TABLE,
            by_row(found, count),
            odd,
            reserved=[*columns, UNEXPECTED_COLUMN],
            field_prefix=("errors", "data[]"),
        )
    )
    columns[UNEXPECTED_COLUMN] = unexpected_column(odd, count)
    return _table(columns, keys=("account", "batch_id", "position"))
