"""`batchlens failed-requests BATCH_ID`: one batch's failed requests, to build a retry file from.

It reads the views only (`stg_batches`, `stg_batch_files`, `request_errors`, `statuses`,
`batch_errors`, by the queries of `sql/queries/failed_requests/`): which requests failed and
with which code is defined there, and whether a status is terminal is the `statuses` view's
to say. A batch it cannot answer for (unknown, still running, its error file not loaded or
gone) is an error with exit code 4, like the API's 404, with one sentence saying why. A
batch that failed as a whole (its input file failed validation) has no failed request to
list: its own errors are what to fix, and `batch_errors` says them on stderr, so that stdout
stays the (empty) list a script expects.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from batchlens.errors import REFUSED, BatchlensError, UsageError
from batchlens.report.format import NO_CODE
from batchlens.views.build import SCHEMA
from batchlens.views.queries import read

FORMATS = ("csv", "jsonl")
COLUMNS = ("custom_id", "error_code", "status_code", "error_type", "error_message")
# C0 and C1 control characters but tab: what could drive a terminal if printed raw
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class UnknownBatchError(BatchlensError):
    """The database cannot say which requests of this batch failed."""

    exit_code = REFUSED


def failed_requests(connection: Any, dialect: str, batch_id: str) -> list[dict]:
    """The failed requests of `batch_id` (every account that has it), by custom_id."""
    _require_views(connection, dialect)
    batches = read(connection, dialect, "failed_requests/batch", batch_id=batch_id)
    if not batches:
        raise UnknownBatchError(
            f"batch {batch_id!r} is not in the database; run `batchlens extract` first"
        )
    found: list[dict] = []
    for batch in batches:
        account, error_file_id = batch["account"], batch["error_file_id"]
        if not batch["is_terminal"]:
            raise UnknownBatchError(
                f"batch {batch_id} is still {batch['status']}: its error file does not exist yet"
            )
        if error_file_id is None:
            continue  # no request failed: nothing to list
        state = read(
            connection,
            dialect,
            "failed_requests/error_file",
            account=account,
            file_id=error_file_id,
        )
        if not state:
            raise UnknownBatchError(
                f"the error file {error_file_id} of batch {batch_id} is not loaded; run "
                "`batchlens extract` (with --requests errors, the default, or all)"
            )
        if state[0]["state"] != "loaded":
            raise UnknownBatchError(
                f"the error file {error_file_id} of batch {batch_id} is {state[0]['state']}: "
                "the API no longer serves it, so its failed requests are unknown"
            )
        found.extend(
            read(connection, dialect, "failed_requests/failed", account=account, batch_id=batch_id)
        )
    return found


def batch_errors(connection: Any, dialect: str, batch_id: str) -> list[dict]:
    """The errors of `batch_id` when it failed as a whole (status failed, no error file)."""
    return read(connection, dialect, "failed_requests/batch_errors", batch_id=batch_id)


def render_batch_errors(batch_id: str, errors: list[dict]) -> str:
    """What stderr says of a batch that failed as a whole: that none of its requests ran
    (or failed on its own), then each of its errors; control characters shown escaped."""
    total = errors[0]["request_total"]
    if not total:
        why = "no request ran: the batch failed before it started"
    else:
        why = f"none of its {total} requests failed on its own: the batch failed as a whole"
    lines = [f"batchlens: batch {batch_id} has no failed requests to retry; {why}. Its errors:"]
    for error in errors:
        line = "" if error["line"] is None else f" (line {error['line']})"
        lines.append(f"  {error['code'] or NO_CODE}{line}: {error['message'] or ''}")
    text = "\n".join(lines) + "\n"
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode(), text)


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
    found = read(connection, dialect, "failed_requests/views", schema=SCHEMA)
    needed = {"stg_batches", "stg_batch_files", "request_errors", "statuses", "batch_errors"}
    missing = needed - {row["table_name"] for row in found}
    if missing:
        raise UsageError(
            f"the database has no {', '.join(sorted(missing))} view yet; "
            "run `batchlens extract` (or `batchlens models`) first"
        )
