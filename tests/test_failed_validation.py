"""`batchlens failed-requests` on a batch that failed validation (issue 25, item 8): it has
no error file and no failed request, so stdout stays the empty list a script reads, and
stderr says that no request ran and prints the batch's own errors (`batch_errors`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from batchlens.report.failed_requests import COLUMNS
from batchlens.simulator.server import Simulator
from helpers import extract, run_cli

ERRORS = (
    {"code": "invalid_json", "message": "Line 137 is not valid JSON.", "param": None, "line": 137},
    {"code": "invalid_url", "message": "The URL \x1b[31mdoes not match\x1b[0m the batch.",
     "param": "url", "line": 4},
    {"code": "token_limit_exceeded", "message": "Enqueued token limit reached.", "param": None,
     "line": None},
)  # fmt: skip


@pytest.fixture
def rejected(sim: Simulator, db: Path) -> str:
    (batch_id,) = sim.add_batches(1, scenario="failed_validation", errors=ERRORS)
    sim.advance(3_600)  # validation takes at most 40 minutes
    assert extract(sim, db).returncode == 0
    return batch_id


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_batch_that_failed_validation_says_so(db: Path, rejected: str, fmt: str) -> None:
    result = run_cli("failed-requests", rejected, "--db", str(db), "--format", fmt, cwd=db.parent)
    assert result.returncode == 0, result.stderr
    if fmt == "csv":  # the list a retry script reads: empty, with its header
        assert list(csv.reader(io.StringIO(result.stdout))) == [list(COLUMNS)]
    else:
        assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"batchlens: batch {rejected} has no failed requests to retry; no request ran: the "
        "batch failed before it started. Its errors:",
        "  invalid_url (line 4): The URL \\x1b[31mdoes not match\\x1b[0m the batch.",
        "  invalid_json (line 137): Line 137 is not valid JSON.",
        "  token_limit_exceeded: Enqueued token limit reached.",
    ]


def test_a_batch_with_failed_requests_prints_no_such_note(sim: Simulator, db: Path) -> None:
    (batch_id,) = sim.add_batches(1, scenario="all_failed")
    sim.advance(2 * 86_400)
    assert extract(sim, db).returncode == 0
    result = run_cli("failed-requests", batch_id, "--db", str(db), cwd=db.parent)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and len(result.stdout.splitlines()) > 1
