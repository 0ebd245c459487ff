"""`batchlens check` over a simulated history: which batches each rule names, and how it says so.

The history is generated around the wall clock (the views' "now" is the start of the
extraction), with a burst of failed batches in the last hours. Every expected finding is
worked out here, in plain Python over the simulator's own objects and the recorded "as of",
never read back from the views: stuck, overdue and expiring batches, the window's rates,
and the undownloaded error files. The outputs are parsed the way their consumers parse
them: perfdata by the plugin guidelines' grammar, the textfile by `prometheus_client`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from prometheus_client.parser import text_string_to_metric_families

from batchlens import cli
from batchlens.check.rules import Settings, Thresholds, evaluate
from batchlens.check.snapshot import Snapshot
from batchlens.config import Account
from batchlens.run.extract import run_extraction, state_dir
from batchlens.simulator.server import Simulator
from helpers import KEY, cli_env, run_cli

HOUR, DAY = 3_600, 86_400
OPEN = ("validating", "in_progress", "finalizing", "cancelling")
TERMINAL = ("completed", "failed", "expired", "cancelled")
SINCE = {"validating": "created_at", "in_progress": "in_progress_at",
         "finalizing": "finalizing_at", "cancelling": "cancelling_at"}  # fmt: skip
# What stalls: only a status with a threshold (statuses.stuck_after_hours), finalizing after
# 6 h; --stuck-hours replaces that threshold and gives the other statuses none.
STALLS = ("finalizing",)
# label=value[UOM];[warn];[crit];[min];[max] (Nagios plugin development guidelines)
PERF_ITEM = re.compile(
    r"^(?P<label>[^='\s]+)=(?P<value>U|-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)(?P<unit>s|%|B|c)?"
    r";(?P<warn>[@~\-\d.:]*);(?P<crit>[@~\-\d.:]*);(?P<min>[-\d.]*);(?P<max>[-\d.]*)$"
)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict], float]:
    """A loaded database, the batches the API showed, and "as of" (epoch seconds)."""
    db = tmp_path_factory.mktemp("check") / "history.duckdb"
    with Simulator(batches=700, seed=29, now=int(time.time()) - 10, api_key=KEY) as sim:
        # a spike: eight batches rejected at validation a second after they were created
        sim.add_batches(8, scenario="failed_validation", failed_at=sim.clock + 1)
        # finalizing for 20 h: stalled at 6 h (the statuses' threshold) and 10 h, not at 30 h
        sim.add_batches(
            1, scenario="slow_finalizing", created_at=sim.clock - 22 * HOUR,
            in_progress_at=sim.clock - 21 * HOUR, finalizing_at=sim.clock - 20 * HOUR,
            completed_at=sim.clock + DAY,
        )  # fmt: skip
        sim.advance(2)
        run_extraction(db, Account(name="default", base_url=sim.url, api_key=KEY))
        visible = sim.visible()
    with duckdb.connect(str(db), read_only=True) as connection:
        (as_of,) = connection.execute(
            "select max(started_at) from openai_batches.extractions"
        ).fetchone()
    return db, visible, as_of.timestamp()


@pytest.fixture
def copy(history: tuple[Path, list[dict], float], tmp_path: Path) -> Path:
    """The history's database, for a test that changes it."""
    target = tmp_path / "copy.duckdb"
    shutil.copy(history[0], target)
    return target


# --- the independent computation --------------------------------------------------------------


def stuck(visible: list[dict], as_of: float, hours: float) -> set[str]:
    """The batches `open_batches.is_stalled` names at a threshold of `hours`."""
    return {
        b["id"]
        for b in visible
        if b["status"] in STALLS
        and as_of - (b[SINCE[b["status"]]] or b["created_at"]) > hours * HOUR
    }


def overdue(visible: list[dict], as_of: float) -> set[str]:
    return {b["id"] for b in visible if b["status"] in OPEN and as_of > b["expires_at"]}


def expiring(visible: list[dict], as_of: float, hours: float) -> set[str]:
    return {
        b["id"]
        for b in visible
        if b["status"] in OPEN and as_of <= b["expires_at"] <= as_of + hours * HOUR
    }


def window_rates(visible: list[dict], as_of: float, hours: float) -> tuple[int, float, float]:
    ended = [
        b for b in visible if b["status"] in TERMINAL and b["created_at"] > as_of - hours * HOUR
    ]
    failed = sum(b["status"] == "failed" for b in ended)
    requests = sum(b["request_counts"]["total"] for b in ended)
    failed_requests = sum(b["request_counts"]["failed"] for b in ended)
    return len(ended), failed / len(ended), failed_requests / requests if requests else 0.0


def ended_at(batch: dict) -> int:
    return min(batch[k] for k in ("completed_at", "failed_at", "expired_at", "cancelling_at",
                                  "cancelled_at") if batch[k] is not None)  # fmt: skip


def error_files_due(visible: list[dict], as_of: float) -> dict[str, str]:
    """Batch id -> error file id: files deleted 30 days after the end, within the next day."""
    return {
        b["id"]: b["error_file_id"]
        for b in visible
        if b["status"] in TERMINAL
        and b["error_file_id"]
        and as_of < ended_at(b) + 30 * DAY <= as_of + DAY
    }


def cli_check(db: Path, *args: str, cwd: Path | None = None, **env: str):
    """`batchlens check` in a process of its own: exit statuses, configuration, locks."""
    return run_cli(
        "check", "--db", str(db), *args, cwd=cwd or db.parent, env=cli_env(**env), own_process=True
    )


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def check(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """The same CLI in this process (a process start costs seconds on a busy machine)."""
    # main() installs a SIGTERM handler and a stderr log handler for a process of its own
    monkeypatch.setattr(cli.signal, "signal", lambda *_: None)
    monkeypatch.setattr(cli, "_log_warnings_to_stderr", lambda: None)

    def run(db: Path, *args: str) -> Run:
        capsys.readouterr()
        code = cli.main(["check", "--db", str(db), *args])
        out, err = capsys.readouterr()
        assert KEY not in out + err
        return Run(code, out, err)

    return run


def findings(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return json.loads(result.stdout)["findings"]


def ids(found: list[dict[str, Any]], rule: str) -> set[str]:
    return {f["batch_id"] for f in found if f["rule"] == rule}


# --- rules ----------------------------------------------------------------------------------


def test_each_rule_names_exactly_the_batches_it_should(history, check) -> None:
    db, visible, as_of = history
    total, failure_rate, request_failure_rate = window_rates(visible, as_of, 48)
    assert total >= 16 and failure_rate > 0.25  # the spike is in the window
    assert request_failure_rate > 0
    result = check(
        db, "--format", "json", "--stuck-hours", "10", "--expiring-hours", "5",
        "--window-hours", "48", "--max-failure-rate", f"{failure_rate - 0.01}",
        "--max-request-failure-rate", f"{request_failure_rate + 0.01}",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    found = findings(result)
    assert ids(found, "stuck") == stuck(visible, as_of, 10) != set()
    assert ids(found, "overdue") == overdue(visible, as_of) != set()
    assert ids(found, "expiring") == expiring(visible, as_of, 5) != set()
    assert stuck(visible, as_of, 10) < {b["id"] for b in visible if b["status"] in OPEN}
    (rate,) = [f for f in found if f["rule"] == "failure_rate"]
    assert rate["value"] == pytest.approx(failure_rate)
    assert rate["severity"] == "critical" and rate["batch_id"] is None
    assert not [f for f in found if f["rule"] == "request_failure_rate"]
    by_id = {b["id"]: b for b in visible}
    for finding in found:
        if finding["rule"] == "stuck":
            batch = by_id[finding["batch_id"]]
            assert finding["status"] == batch["status"]
            since = batch[SINCE[batch["status"]]] or batch["created_at"]
            assert finding["hours"] == pytest.approx((as_of - since) / HOUR, abs=0.01)
    assert json.loads(result.stdout)["status"] == "CRITICAL"


def test_rates_need_min_batches(history, check) -> None:
    db, visible, as_of = history
    total, failure_rate, _ = window_rates(visible, as_of, 48)
    fires = ("--window-hours", "48", "--max-failure-rate", f"{failure_rate / 2}")
    assert "failure_rate" in {f["rule"] for f in findings(check(db, "--format", "json", *fires))}
    quiet = check(db, "--format", "json", *fires, "--min-batches", str(total + 1))
    assert "failure_rate" not in {f["rule"] for f in findings(quiet)}


def test_every_exit_status(history, check, tmp_path: Path) -> None:
    db, visible, as_of = history
    assert stuck(visible, as_of, 6) and overdue(visible, as_of)
    quiet = ("--stuck-hours", "1000", "--expiring-hours", "0", "--severity", "overdue=off")
    ok = check(db, *quiet)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("BATCHLENS OK - ")
    assert len(ok.stdout.splitlines()) == 1

    warning = check(db, "--severity", "stuck=warning", "--severity", "overdue=warning",
                    "--expiring-hours", "0")  # fmt: skip
    assert warning.returncode == 1 and warning.stdout.startswith("BATCHLENS WARNING - ")

    critical = check(db)
    assert critical.returncode == 2
    assert critical.stdout.startswith(f"BATCHLENS CRITICAL - {len(stuck(visible, as_of, 6))} ")

    missing = cli_check(tmp_path / "nowhere.duckdb")  # the real process's status
    assert missing.returncode == 3
    assert missing.stdout.startswith("BATCHLENS UNKNOWN - the database does not exist")
    assert not (tmp_path / "nowhere.duckdb").exists()
    assert missing.stderr.startswith("batchlens: ")

    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    assert check(junk).returncode == 3


@pytest.mark.parametrize(
    "args",
    [
        ["--stuck-hours", "soon"],  # argparse's own errors: they would exit 2, CRITICAL
        ["--bogus"],
        ["--format", "xml"],
        ["--max-failure-rate", "1.5"],
        ["--severity", "stuck=panic"],
        ["--severity", "nosuchrule=warning"],
        ["--min-batches", "0"],
        ["--output", "/nonexistent-folder/batchlens.prom"],
    ],
)
def test_a_bad_option_is_unknown(history, check, args: list[str]) -> None:
    result = check(history[0], *args)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith("BATCHLENS UNKNOWN - ")
    assert "Traceback" not in result.stderr


def test_argparse_errors_exit_3_from_a_real_process(history) -> None:
    result = cli_check(history[0], "--stuck-hours", "soon")
    assert result.returncode == 3
    assert result.stdout.startswith("BATCHLENS UNKNOWN - ")
    assert "invalid float value: 'soon'" in result.stdout + result.stderr


def test_help_states_the_exit_codes(check, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["check", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN" in text


def test_a_database_without_views_is_unknown(tmp_path: Path, check) -> None:
    db = tmp_path / "raw.duckdb"
    with Simulator(batches=20, seed=3, now=int(time.time()), api_key=KEY) as sim:
        run_extraction(db, Account("default", sim.url, KEY), build_views=False)
    result = check(db, "--format", "json")
    assert result.returncode == 3
    assert json.loads(result.stdout)["status"] == "UNKNOWN"
    assert "batchlens models" in result.stderr


# --- output ---------------------------------------------------------------------------------


def test_text_first_line_and_perfdata(history, check) -> None:
    db, visible, as_of = history
    result = check(db, "--stuck-hours", "10", "--expiring-hours", "5")
    first, *rest = result.stdout.splitlines()
    head, perf = first.split(" | ")
    expected_stuck = stuck(visible, as_of, 10)
    assert head.startswith(f"BATCHLENS CRITICAL - {len(expected_stuck)} batches stuck > 10 h")
    items = {}
    for item in perf.split():
        match = PERF_ITEM.match(item)
        assert match, item
        items[match["label"]] = match
    assert int(items["stuck"]["value"]) == len(expected_stuck)
    assert items["stuck"]["crit"] == "0" and items["stuck"]["warn"] == ""
    assert int(items["overdue"]["value"]) == len(overdue(visible, as_of))
    assert int(items["expiring"]["value"]) == len(expiring(visible, as_of, 5))
    assert items["expiring"]["warn"] == "0"  # a warning by default
    assert int(items["open"]["value"]) == sum(b["status"] in OPEN for b in visible)
    assert items["extract_age"]["unit"] == "s" and items["extract_age"]["crit"] == "3600"
    assert 0 <= float(items["extract_age"]["value"]) < 600
    assert items["failure_rate"]["crit"] == ""  # off unless given
    # then one line per finding, naming the batch
    assert len(rest) == len(expected_stuck) + len(overdue(visible, as_of)) + len(
        expiring(visible, as_of, 5)
    )
    for batch_id in expected_stuck:
        line = next(line for line in rest if batch_id in line and " stuck " in line)
        assert line.startswith("CRITICAL stuck account=default batch=")


def test_prometheus_textfile_values(history, check, tmp_path: Path) -> None:
    db, visible, as_of = history
    out = tmp_path / "batchlens.prom"
    _, failure_rate, request_failure_rate = window_rates(visible, as_of, 24)
    result = check(db, "--format", "prometheus", "--output", str(out))
    assert result.returncode == 2 and result.stdout == ""
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(out.read_text()):
        assert family.type == "gauge"
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value

    def value(name: str, **labels: str) -> float:
        return samples[name][tuple(sorted(labels.items()))]

    by_status = Counter(b["status"] for b in visible)
    stuck_ids = stuck(visible, as_of, 6)
    stuck_by_status = Counter(b["status"] for b in visible if b["id"] in stuck_ids)
    for status in OPEN:
        assert (
            value("batchlens_open_batches", account="default", status=status) == by_status[status]
        )
        assert (
            value("batchlens_stuck_batches", account="default", status=status)
            == (stuck_by_status[status])
        )
    oldest_finalizing = min(b["created_at"] for b in visible if b["status"] == "finalizing")
    assert value(
        "batchlens_oldest_open_batch_age_seconds", account="default", status="finalizing"
    ) == pytest.approx(as_of - oldest_finalizing, abs=1e-3)
    assert value("batchlens_failure_rate", account="default", window="24h") == pytest.approx(
        failure_rate
    )
    assert value(
        "batchlens_request_failure_rate", account="default", window="24h"
    ) == pytest.approx(request_failure_rate)
    assert value("batchlens_last_extraction_timestamp_seconds", account="default") == (
        pytest.approx(as_of, abs=1e-3)
    )
    assert value("batchlens_check_status") == 2
    assert value("batchlens_check_findings", rule="stuck", severity="critical") == len(stuck_ids)
    assert value("batchlens_check_findings", rule="stuck", severity="warning") == 0


def test_the_textfile_is_replaced_atomically(history, check, tmp_path: Path) -> None:
    db = history[0]
    for fmt in ("prometheus", "json", "text"):
        out = tmp_path / f"batchlens.{fmt}"
        out.write_text("the previous check\n")
        before = out.stat().st_ino
        with open(out) as previous:  # a collector still reading the old file
            result = check(db, "--format", fmt, "--output", str(out))
            assert result.returncode == 2 and result.stdout == ""
            assert previous.read() == "the previous check\n"  # never written in place
        assert out.stat().st_ino != before  # a new file renamed over the old one
        assert out.read_text() != "the previous check\n"
        assert sorted(p.name for p in tmp_path.iterdir() if fmt in p.name) == [out.name]


def test_unknown_in_every_format(tmp_path: Path, check) -> None:
    missing = tmp_path / "nowhere.duckdb"
    result = check(missing, "--format", "json")
    assert result.returncode == 3
    assert json.loads(result.stdout)["status"] == "UNKNOWN"
    out = tmp_path / "batchlens.prom"
    out.write_text("batchlens_check_status 0.0\n")  # the last good check's file
    result = check(missing, "--format", "prometheus", "--output", str(out))
    assert result.returncode == 3
    families = {f.name: f for f in text_string_to_metric_families(out.read_text())}
    assert families["batchlens_check_status"].samples[0].value == 3
    assert set(families) == {"batchlens_check_status"}  # no stale series pass for current


def test_hostile_batch_ids_cannot_break_the_plugin_line(tmp_path: Path, check) -> None:
    now = int(time.time())
    hostile = {
        "id": "batch_x | evil=1\nCRITICAL forged", "object": "batch",
        "endpoint": "/v1/chat/completions", "errors": None, "input_file_id": "file-in",
        "completion_window": "24h", "status": "finalizing", "output_file_id": None,
        "error_file_id": None, "created_at": now - 2 * DAY, "in_progress_at": now - 2 * DAY,
        "expires_at": now - DAY, "finalizing_at": now - 40 * HOUR, "completed_at": None,
        "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
        "request_counts": {"total": 1, "completed": 1, "failed": 0}, "metadata": None,
    }  # fmt: skip
    db = tmp_path / "hostile.duckdb"
    with Simulator(history=[hostile], api_key=KEY) as sim:
        run_extraction(db, Account("default", sim.url, KEY))
    result = check(db)
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert len(lines) == 3  # the first line, stuck, overdue: nothing forged
    assert lines[0].count("|") == 1
    assert all("|" not in line and "batch_x ? evil=1?CRITICAL forged" in line for line in lines[1:])


# --- thresholds from config and flags ----------------------------------------------------------


@pytest.mark.slow  # processes of their own, each loading dlt
def test_thresholds_from_config_per_account_and_flags(history, tmp_path: Path) -> None:
    db, visible, as_of = history
    (tmp_path / ".dlt").mkdir()
    config = tmp_path / ".dlt" / "config.toml"
    config.write_text(
        textwrap.dedent("""
            [check]
            stuck_hours = 10
            max_extract_age = 0.001

            [check.severity]
            overdue = "warning"
        """)
    )
    found = findings(cli_check(db, "--format", "json", cwd=tmp_path))
    assert ids(found, "stuck") == stuck(visible, as_of, 10)
    assert {f["severity"] for f in found if f["rule"] == "overdue"} == {"warning"}
    assert [f["rule"] for f in found if f["rule"] == "extract_age"] == ["extract_age"]

    # a flag wins over the file
    found = findings(cli_check(db, "--format", "json", "--max-extract-age", "600",
                           "--stuck-hours", "30", cwd=tmp_path))  # fmt: skip
    assert ids(found, "stuck") == stuck(visible, as_of, 30) != stuck(visible, as_of, 10)
    assert not [f for f in found if f["rule"] == "extract_age"]

    # the account's table over [check]; a flag still wins over both
    config.write_text(
        config.read_text()
        + "\n[check.accounts.default]\nstuck_hours = 30\n[check.accounts.default.severity]\n"
        'overdue = "off"\n'
    )
    found = findings(cli_check(db, "--format", "json", cwd=tmp_path))
    assert ids(found, "stuck") == stuck(visible, as_of, 30)
    assert not ids(found, "overdue")
    found = findings(cli_check(db, "--format", "json", "--stuck-hours", "10",
                           "--severity", "overdue=critical", cwd=tmp_path))  # fmt: skip
    assert ids(found, "stuck") == stuck(visible, as_of, 10)
    assert {f["severity"] for f in found if f["rule"] == "overdue"} == {"critical"}

    # and the environment, the dlt way
    found = findings(cli_check(db, "--format", "json", CHECK__STUCK_HOURS="30"))
    assert ids(found, "stuck") == stuck(visible, as_of, 30)

    config.write_text("[check]\nstuck_hours = -1\n")
    bad = cli_check(db, cwd=tmp_path)
    assert bad.returncode == 3 and "stuck_hours in [check]" in bad.stdout


# --- the rules that need the request-level files and the costs --------------------------------


def test_undownloaded_error_files_about_to_be_deleted(history, check, copy: Path) -> None:
    _, visible, as_of = history
    due = error_files_due(visible, as_of)
    assert due, "the history should end a batch with an error file 29-30 days ago"
    rule = "error_file_expiring"
    with duckdb.connect(str(copy)) as connection:  # a database from before the files
        connection.execute("drop view if exists openai_batches.stg_batch_files")
        connection.execute("drop table if exists openai_batches.batch_files")
    assert not ids(findings(check(copy, "--format", "json")), rule)  # no ledger: no rule
    with duckdb.connect(str(copy)) as connection:  # the ledger of the request-level files
        connection.execute(
            "create table openai_batches.batch_files (account varchar, file_id varchar, "
            "batch_id varchar, kind varchar, state varchar, lines bigint, bytes bigint, "
            "loaded_at timestamptz)"
        )
    result = check(copy, "--format", "json")
    found = findings(result)
    assert ids(found, rule) == set(due)
    assert {f["severity"] for f in found if f["rule"] == rule} == {"warning"}
    assert json.loads(result.stdout)["perfdata"]["error_files_expiring"] == len(due)

    downloaded = sorted(due)[0]
    with duckdb.connect(str(copy)) as connection:
        connection.execute(
            "insert into openai_batches.batch_files values "
            "('default', $file, $batch, 'error', 'loaded', 3, 300, now())",
            {"file": due[downloaded], "batch": downloaded},
        )
    assert ids(findings(check(copy, "--format", "json")), rule) == set(due) - {downloaded}


def test_daily_cost_of_the_current_utc_day(history, check, copy: Path, tmp_path: Path) -> None:
    as_of_day = datetime.fromtimestamp(history[2], UTC).date()
    with duckdb.connect(str(copy)) as connection:
        connection.execute("drop view if exists openai_batches.costs_daily")  # the real one
        connection.execute(
            "create table openai_batches.costs_daily (day date, account varchar, "
            "endpoint varchar, model varchar, cost_usd double)"
        )
        connection.executemany(
            "insert into openai_batches.costs_daily values ($1, 'default', $2, $3, $4)",
            [
                [as_of_day, "/v1/chat/completions", "gpt-4o-mini", 30.25],
                [as_of_day, "/v1/responses", "gpt-5", 20.0],
                [as_of_day, "/v1/responses", None, None],  # an unpriced model
                [as_of_day - timedelta(days=1), "/v1/responses", "gpt-5", 900.0],  # yesterday
            ],
        )
    quiet = ("--stuck-hours", "1000", "--expiring-hours", "0", "--severity", "overdue=off")
    assert check(copy, *quiet, "--max-daily-cost", "50.25").returncode == 0
    result = check(copy, *quiet, "--max-daily-cost", "50", "--format", "json")
    assert result.returncode == 1
    (finding,) = findings(result)
    assert (finding["rule"], finding["value"], finding["threshold"]) == ("daily_cost", 50.25, 50)
    out = tmp_path / "cost.prom"
    check(copy, *quiet, "--format", "prometheus", "--output", str(out))
    (family,) = [
        f for f in text_string_to_metric_families(out.read_text())
        if f.name == "batchlens_daily_cost_usd"
    ]  # fmt: skip
    assert family.samples[0].value == 50.25


# --- an extraction writing the same file ------------------------------------------------------


@pytest.mark.slow  # processes of their own, each loading dlt
def test_check_while_an_extraction_writes(history, check, copy: Path) -> None:
    """DuckDB lets no reader beside a writer: check waits for it, or says who it is."""
    with Simulator(batches=50, seed=5, now=int(time.time()), api_key=KEY) as sim:
        sim.inject("timeout", on="list", times=1, delay=8)  # a slow first page
        writer = subprocess.Popen(
            [sys.executable, "-m", "batchlens", "extract", "--db", str(copy),
             "--base-url", sim.url],
            cwd=copy.parent, env=cli_env(RUNTIME__REQUEST_TIMEOUT="10"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            lock = state_dir(copy) / "lock"
            deadline = time.monotonic() + 60
            while not (lock.exists() and str(writer.pid) in lock.read_text()):
                assert time.monotonic() < deadline and writer.poll() is None
                time.sleep(0.05)
            time.sleep(0.5)  # the lock is taken just before the file is opened
            refused = check(copy, "--wait", "0")
            assert refused.returncode == 3
            assert refused.stdout.startswith("BATCHLENS UNKNOWN - an extraction is writing")
            assert f"pid {writer.pid}" in refused.stdout
            answered = check(copy, "--wait", "60", "--format", "json")
            assert writer.wait(timeout=60) == 0
            assert answered.returncode in (0, 1, 2), answered.stdout + answered.stderr
            assert json.loads(answered.stdout)["status"] != "UNKNOWN"
        finally:
            if writer.poll() is None:
                writer.kill()
            writer.communicate()
    assert os.path.getsize(copy) > 0


# --- the rules themselves, without a database --------------------------------------------------


def _snapshot(**changes: Any) -> Snapshot:
    as_of = datetime(2026, 3, 1, 12, tzinfo=UTC)
    stalled = [
        {"batch_id": f"batch_{account}", "account": account, "status": "finalizing",
         "hours_in_status": 8.0, "stuck_after_hours": 6.0}
        for account in ("a", "b")
    ]  # fmt: skip
    base = {
        "as_of": as_of,
        "accounts": ["a", "b"],
        "open_batches": [
            {"batch_id": f"batch_{account}", "account": account, "status": "finalizing",
             "status_since": as_of - timedelta(hours=8), "hours_in_status": 8.0,
             "expires_at": as_of + timedelta(hours=10), "is_overdue": False,
             "hours_to_expiry": 10.0}
            for account in ("a", "b")
        ],
        "active": [],
        "rates": {24.0: [{"account": "a", "terminal": 4, "failed": 4, "request_total": 10,
                          "request_failed": 10, "failure_rate": 1.0,
                          "request_failure_rate": 1.0}]},
        "last_extractions": {"a": as_of, "b": as_of - timedelta(hours=5)},
        # what check/stalled.sql selects: at the statuses' 6 h both, at b's 12 h neither
        "stalled": {None: stalled, 12.0: []},
    }  # fmt: skip
    return Snapshot(**{**base, **changes})


def test_rules_per_account_and_the_extraction_clock() -> None:
    snapshot = _snapshot()
    now = snapshot.as_of + timedelta(minutes=10)
    settings = Settings(
        default=Thresholds(max_failure_rate=0.5, min_batches=4),
        accounts={"b": Thresholds(stuck_hours=12, severity={"extract_age": "warning"})},
    )
    outcome = evaluate(snapshot, settings, now)
    got = {(f.rule, f.account, f.severity) for f in outcome.findings}
    assert got == {
        ("stuck", "a", "critical"),  # 8 h > 6 h; b allows 12 h
        ("failure_rate", "a", "critical"),  # 4 of 4, and 4 ended >= min_batches
        ("extract_age", "b", "warning"),  # 5 h 10 min old, b's severity
    }
    assert outcome.state_name == "CRITICAL"
    assert outcome.extract_age_s == {"a": 600.0, "b": 5 * HOUR + 600.0}
    # one batch fewer than min_batches: no rate finding; an account never extracted: one
    fewer = Settings(default=Thresholds(max_failure_rate=0.5, min_batches=5))
    quiet = evaluate(_snapshot(last_extractions={"a": snapshot.as_of}), fewer, now)
    assert {(f.rule, f.account) for f in quiet.findings} == {
        ("stuck", "a"), ("stuck", "b"), ("extract_age", "b")
    }  # fmt: skip
    assert [f.message for f in quiet.findings if f.rule == "extract_age"] == [
        "no extraction recorded: run `batchlens extract` (from cron)"
    ]


def test_a_database_no_extraction_ever_finished_in_is_critical() -> None:
    empty = Snapshot(as_of=None, accounts=[], open_batches=[], active=[], rates={},
                     last_extractions={})  # fmt: skip
    outcome = evaluate(empty, Settings(), datetime.now(UTC))
    assert [(f.rule, f.severity) for f in outcome.findings] == [("extract_age", "critical")]
    assert outcome.state_name == "CRITICAL"
