"""`batchlens failed-requests BATCH_ID`: one batch's failed requests, to build a retry file from.

It reads the views only (`stg_batches`, `stg_batch_files`, `request_errors`): which requests
failed and with which code is defined there. A batch it cannot answer for (unknown, still
running, its error file not loaded or gone) is an error with exit code 4, like the API's
404, with one sentence saying why.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from batchlens.errors import REFUSED, BatchlensError, UsageError
from batchlens.storage.dialects import rows
from batchlens.views.build import SCHEMA

FORMATS = ("csv", "jsonl")
COLUMNS = ("custom_id", "error_code", "status_code", "error_type", "error_message")
TERMINAL = ("completed", "failed", "expired", "cancelled")
# C0 and C1 control characters but tab: what could drive a terminal if printed raw
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

BATCH = f"""
select account, status, error_file_id
from {SCHEMA}.stg_batches
where batch_id = $batch_id
order by account
"""

ERROR_FILE = f"""
select state
from {SCHEMA}.stg_batch_files
where account = $account and file_id = $file_id
"""

FAILED = f"""
select {", ".join(COLUMNS)}
from {SCHEMA}.request_errors
where account = $account and batch_id = $batch_id
order by custom_id
"""


class UnknownBatchError(BatchlensError):
    """The database cannot say which requests of this batch failed."""

    exit_code = REFUSED


def failed_requests(connection: Any, dialect: str, batch_id: str) -> list[dict]:
    """The failed requests of `batch_id` (every account that has it), by custom_id."""
    _require_views(connection, dialect)
    _, batches = rows(connection, dialect, BATCH, {"batch_id": batch_id})
    if not batches:
        raise UnknownBatchError(
            f"batch {batch_id!r} is not in the database; run `batchlens extract` first"
        )
    found: list[dict] = []
    for account, status, error_file_id in batches:
        if status not in TERMINAL:
            raise UnknownBatchError(
                f"batch {batch_id} is still {status}: its error file does not exist yet"
            )
        if error_file_id is None:
            continue  # no request failed: nothing to list
        _, state = rows(
            connection, dialect, ERROR_FILE, {"account": account, "file_id": error_file_id}
        )
        if not state:
            raise UnknownBatchError(
                f"the error file {error_file_id} of batch {batch_id} is not loaded; run "
                "`batchlens extract` (with --requests errors, the default, or all)"
            )
        if state[0][0] != "loaded":
            raise UnknownBatchError(
                f"the error file {error_file_id} of batch {batch_id} is {state[0][0]}: "
                "the API no longer serves it, so its failed requests are unknown"
            )
        names, failed = rows(
            connection, dialect, FAILED, {"account": account, "batch_id": batch_id}
        )
        found.extend(dict(zip(names, row, strict=True)) for row in failed)
    return found


def render(found: list[dict], fmt: str, terminal: bool = False) -> str:
    """CSV with a header, or one JSON object per line; control characters shown escaped
    when the output is a terminal (a custom_id is the API's data, hostile until escaped)."""
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in found)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(found)
    text = buffer.getvalue()
    if terminal:
        text = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode(), text)
    return text


def _require_views(connection: Any, dialect: str) -> None:
    _, found = rows(
        connection,
        dialect,
        "select table_name from information_schema.tables "
        "where table_schema = $schema and table_type = 'VIEW'",
        {"schema": SCHEMA},
    )
    missing = {"stg_batches", "stg_batch_files", "request_errors"} - {name for (name,) in found}
    if missing:
        raise UsageError(
            f"the database has no {', '.join(sorted(missing))} view yet; "
            "run `batchlens extract` (or `batchlens models`) first"
        )
