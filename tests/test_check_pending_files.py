"""`batchlens check` warns about a file whose download has kept failing for over a day.

The ledger keeps such a file `pending` from its first failure (issue: a broken download
costs one file). A real extraction against the simulator makes one; the day is the only
thing shortened here (check's threshold, not the clock), so every row, query and message
on the way is the product's own.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from test_check import _snapshot

from batchlens.check import snapshot as check_snapshot
from batchlens.check.rules import Settings, evaluate
from batchlens.simulator.server import Simulator
from helpers import KEY, extract, run_cli


def test_the_rule_names_each_file_pending_longer_than_a_day() -> None:
    row = {
        "account": "a",
        "file_id": "file-1",
        "batch_id": "batch_a",
        "kind": "error",
        "failure_reason": "the download broke off after 0 bytes",
        "hours_pending": 30.0,
    }
    snapshot = _snapshot(pending_files=[row])
    outcome = evaluate(snapshot, Settings(), snapshot.as_of + timedelta(minutes=1))
    (finding,) = [f for f in outcome.findings if f.rule == "pending_files"]
    assert (finding.account, finding.severity, finding.batch_id) == ("a", "warning", "batch_a")
    assert "file-1 has not downloaded for 30 h (the download broke off" in finding.message


def test_check_warns_about_a_file_pending_for_too_long(
    tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Simulator(batches=150, seed=21, api_key=KEY) as sim:
        assert extract(sim, db, "--requests", "none").returncode == 0
        files = sorted(
            b["error_file_id"] for b in sim.visible() if b["status"] in ("completed", "failed")
            and b["error_file_id"]
        )  # fmt: skip
        sim.inject("cut", on="content", match=files[0])  # every attempt breaks off
        assert extract(sim, db).returncode == 6

    def check() -> dict:
        result = run_cli("check", "--db", str(db), "--format", "json", cwd=tmp_path)
        return json.loads(result.stdout)

    pending = [f for f in check()["findings"] if f["rule"] == "pending_files"]
    assert pending == []  # failed seconds ago: a poor link, not yet a finding
    # a day shortened to nothing: the same rows, read by the same query
    monkeypatch.setattr(check_snapshot, "PENDING_FILE_HOURS", -1)
    (finding,) = [f for f in check()["findings"] if f["rule"] == "pending_files"]
    assert files[0] in finding["message"] and "broke off" in finding["message"]
