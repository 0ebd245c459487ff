"""Fields the API adds inside objects, and values of an unexpected type: kept, typed, told once.

`tables.py` types the fields batchlens knows in advance. Everything else the API sends about
a batch still lands:

- a field new inside `request_counts`, `usage` (at any depth) or an `errors.data` entry
  becomes a column named like the known ones (`usage__input_tokens_details__audio_tokens`),
  typed from its values, or from the column's type once a run has created it;
- a value that does not fit its column's type (a string where a count was) is stored as
  sent in the row's `unexpected_values` JSON object, keyed by its path
  (`{"request_counts.total": "12"}`), and the typed column holds NULL.

A column never changes type, so no value can fail a load, and a new column needs no re-read:
dlt adds it to the table and older rows read NULL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from dlt.common.normalizers.naming import NamingConvention
from dlt.common.normalizers.naming.snake_case import NamingConvention as SnakeCase

UNEXPECTED_COLUMN = "unexpected_values"

FieldPath = tuple[str, ...]
# Known structure of a nested object: a field's subtree, or None for a typed leaf.
KnownTree = Mapping[str, "KnownTree | None"]

_INT64 = (-(2**63), 2**63 - 1)
_ARROW_TYPES = {
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "json": pa.string(),  # JSON text, as `metadata` is loaded
}


def dotted(path: Sequence[str]) -> str:
    return ".".join(path)


def to_json(value: Any) -> str:
    """JSON text of a value as the API sent it (integers of any size, never NaN)."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError:  # NaN or infinity, which JSON cannot hold
        return json.dumps(str(value))


@dataclass(frozen=True)
class NewColumn:
    table: str
    column: str
    field: str  # the dotted path in the API's object
    data_type: str


class FieldKeeper:
    """The columns the tables hold already, and what this run found beyond them.

    One keeper serves a whole run, so every chunk types a new field the same way.
    """

    def __init__(
        self,
        existing: Mapping[str, Mapping[str, str]] | None = None,
        naming: NamingConvention | None = None,
    ) -> None:
        self.types = {table: dict(columns) for table, columns in (existing or {}).items()}
        self.naming = naming or SnakeCase()
        self.new_columns: list[NewColumn] = []
        self.unexpected: set[str] = set()

    def column_name(self, path: FieldPath) -> str | None:
        """`request_counts__expired_n` for ("request_counts", "expiredN"), as dlt names it."""
        try:
            parts = [self.naming.normalize_identifier(part) for part in path]
        except (ValueError, TypeError):  # an empty key
            return None
        return self.naming.shorten_fragments(*parts)

    def keep_odd(self, odd: dict[int, dict[str, Any]], row: int, field: str, value: Any) -> None:
        odd.setdefault(row, {})[field] = value
        self.unexpected.add(field)

    def columns(
        self,
        table: str,
        found: Mapping[FieldPath, Sequence[Any]],
        odd: dict[int, dict[str, Any]],
        reserved: Iterable[str],
        field_prefix: FieldPath = (),
        column_prefix: FieldPath = (),
    ) -> dict[str, pa.Array]:
        """Typed columns for the fields in `found` (one value per row); misfits go to `odd`."""
        known = self.types.setdefault(table, {})
        taken = set(reserved)
        out: dict[str, pa.Array] = {}
        for path, values in sorted(found.items()):
            field = dotted((*field_prefix, *path))
            name = self.column_name((*column_prefix, *path))
            if name is None or name in taken or name.startswith(("_dlt", "_batchlens")):
                # would overwrite a column batchlens or dlt makes: kept as sent instead
                for row, value in enumerate(values):
                    if value is not None:
                        self.keep_odd(odd, row, field, value)
                continue
            data_type = known.get(name)
            if data_type is None:
                data_type = _infer(values)
                if data_type is None:  # nulls only: nothing to type the column by yet
                    continue
                known[name] = data_type
                self.new_columns.append(NewColumn(table, name, field, data_type))
            taken.add(name)
            if data_type not in _ARROW_TYPES:  # a column typed outside batchlens
                for row, value in enumerate(values):
                    if value is not None:
                        self.keep_odd(odd, row, field, value)
                continue
            kept: list[Any] = []
            for row, value in enumerate(values):
                if value is None or _fits(value, data_type):
                    kept.append(_convert(value, data_type))
                else:
                    kept.append(None)
                    self.keep_odd(odd, row, field, value)
            out[name] = pa.array(kept, _ARROW_TYPES[data_type])
        return out

    def notes(self, already_noted: Iterable[str] = ()) -> list[str]:
        """One line per new column, and per field with odd values not noted by earlier runs."""
        lines = [
            f"new field {_printable(c.field)} stored as column {c.table}.{c.column} ({c.data_type})"
            for c in self.new_columns
        ]
        for field in sorted(self.unexpected - set(already_noted)):
            lines.append(
                f"field {_printable(field)} sent with a value of an unexpected type: "
                f"kept as sent in {UNEXPECTED_COLUMN}, NULL in its typed column"
            )
        return lines


def walk(
    value: Any,
    known: KnownTree,
    path: FieldPath,
    row: int,
    found: dict[FieldPath, dict[int, Any]],
    odd: dict[int, dict[str, Any]],
    keeper: FieldKeeper,
) -> None:
    """Collects the fields of `value` that `known` does not list, flattening objects.

    A known object that is not an object (a string where `usage` was) is kept as sent.
    """
    if value is None:
        return
    if not isinstance(value, dict):
        keeper.keep_odd(odd, row, dotted(path), value)
        return
    for key, child in value.items():
        if key in known:
            subtree = known[key]
            if subtree is not None:
                walk(child, subtree, (*path, key), row, found, odd, keeper)
        elif isinstance(child, dict):
            walk(child, {}, (*path, key), row, found, odd, keeper)
        elif child is not None:
            found.setdefault((*path, key), {})[row] = child


def by_row(found: Mapping[FieldPath, Mapping[int, Any]], rows: int) -> dict[FieldPath, list]:
    """Sparse values per field as one list per field, a value (or None) for every row."""
    return {path: [values.get(row) for row in range(rows)] for path, values in found.items()}


def unexpected_column(odd: Mapping[int, Mapping[str, Any]], rows: int) -> pa.Array:
    if not odd:
        return pa.nulls(rows, pa.string())
    return pa.array([to_json(odd[row]) if row in odd else None for row in range(rows)], pa.string())


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "bigint" if _INT64[0] <= value <= _INT64[1] else "text"
    if isinstance(value, float):
        return "double"
    return "text"


def _infer(values: Sequence[Any]) -> str | None:
    kinds = {_kind(value) for value in values if value is not None}
    if not kinds:
        return None
    if len(kinds) == 1:
        return kinds.pop()
    if kinds == {"bigint", "double"}:
        return "double"
    return "text"  # mixed: every value as text, as a new top-level field has always been


def _fits(value: Any, data_type: str) -> bool:
    if data_type == "bigint":
        return _kind(value) == "bigint"
    if data_type == "double":
        return _kind(value) in ("bigint", "double")
    if data_type == "bool":
        return isinstance(value, bool)
    return True  # text and JSON hold anything


def _convert(value: Any, data_type: str) -> Any:
    if value is None:
        return None
    if data_type == "double":
        return float(value)
    if data_type == "text":
        return value if isinstance(value, str) else to_json(value)
    if data_type == "json":
        return to_json(value)
    return value


def _printable(text: str) -> str:
    """A field name from the API, safe for a terminal: control characters escaped."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
