"""What a new user meets in the first hour (issue 16): each rough edge, one test or more."""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import pty
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import termios
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import requests

from batchlens.simulator.server import DEFAULT_API_KEY, Simulator
from helpers import KEY, cli_command, cli_env, extract, run_cli, snapshot, summary

BROKEN_SQL = "select * from openai_batches.no_such_table"


def write_sql(root: Path, broken: str | None = None) -> Path:
    """A copy of the package's models, one of them replaced by broken SQL."""
    from batchlens.views.build import sql_dir

    shutil.copytree(sql_dir(), root)
    if broken:
        (root / broken).write_text(BROKEN_SQL)
    return root


# --- 1. the demo replaces only its own database ---------------------------------------------


def test_demo_refuses_a_database_it_did_not_create(sim: Simulator, db: Path) -> None:
    assert extract(sim, db).returncode == 0
    before = db.read_bytes()
    result = run_cli("demo", "--db", str(db), "--batches", "50", cwd=db.parent)
    assert result.returncode == 2, result.stderr
    assert "not a demo database" in result.stderr and "Traceback" not in result.stderr
    assert db.read_bytes() == before


def test_demo_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    notes = tmp_path / "notes.duckdb"
    notes.write_text("my notes\n")
    result = run_cli("demo", "--db", str(notes), "--batches", "50", cwd=tmp_path)
    assert result.returncode == 2 and notes.read_text() == "my notes\n"


def test_demo_replaces_an_earlier_demo_and_says_so_in_help(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    for _ in range(2):
        result = run_cli("demo", "--db", str(db), "--batches", "60", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        (ids,) = con.execute("select count(*) from openai_batches.batches").fetchone()
    assert ids == 60 + 30  # the second demo started from scratch: not 180
    helped = run_cli("demo", "--help", cwd=tmp_path)
    assert "earlier demo" in helped.stdout and "refused" in helped.stdout


# --- 2. a model that cannot be built fails the run before the load --------------------------


def test_broken_sql_fails_the_run_and_changes_nothing(
    sim: Simulator, db: Path, tmp_path: Path
) -> None:
    assert extract(sim, db).returncode == 0
    sim.advance(3600)
    sim.add_batches(5)
    before = snapshot(db)
    broken = write_sql(tmp_path / "sql", broken="marts/open_batches.sql")
    result = extract(sim, db, env=cli_env(BATCHLENS_SQL_DIR=str(broken)))
    assert result.returncode == 1, result.stderr
    assert "open_batches" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(db) == before
    again = extract(sim, db)
    assert again.returncode == 0 and summary(again)["new"] == 5


def test_broken_sql_on_a_first_run_leaves_no_file(sim: Simulator, db: Path, tmp_path: Path) -> None:
    broken = write_sql(tmp_path / "sql", broken="staging/stg_batches.sql")
    result = extract(sim, db, env=cli_env(BATCHLENS_SQL_DIR=str(broken)))
    assert result.returncode == 1 and "stg_batches" in result.stderr
    # (its first pages went out while the views were checked: nothing was loaded)
    assert not db.exists() and not Path(f"{db}.batchlens").exists()


def test_missing_sql_fails_before_the_load(sim: Simulator, db: Path, tmp_path: Path) -> None:
    assert extract(sim, db).returncode == 0
    sim.add_batches(3)
    before = snapshot(db)
    (tmp_path / "empty").mkdir()
    result = extract(sim, db, env=cli_env(BATCHLENS_SQL_DIR=str(tmp_path / "empty")))
    assert result.returncode == 1 and "no SQL models" in result.stderr
    assert snapshot(db) == before


def test_a_view_failure_after_the_load_is_its_own_outcome(
    sim: Simulator, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model that passes the check but not the build after the load: exit 5, load kept."""
    import batchlens.run.extract
    from batchlens.config import Account
    from batchlens.errors import BatchlensError
    from batchlens.run.extract import ViewsNotBuiltError, run_extraction

    account = Account(name="default", base_url=sim.url, api_key=KEY)
    run_extraction(db, account)
    sim.add_batches(4)

    def fails_on_the_new_rows(*args: object, **kwargs: object) -> list[str]:
        raise BatchlensError("model x (x.sql): Binder Error: a column the load changed")

    monkeypatch.setattr(batchlens.run.extract, "build_models", fails_on_the_new_rows)
    with pytest.raises(ViewsNotBuiltError) as raised:
        run_extraction(db, account)
    assert raised.value.exit_code == 5
    assert "loaded, but the views were not rebuilt" in str(raised.value)
    assert raised.value.runs[0].summary.new == 4
    with duckdb.connect(str(db), read_only=True) as con:
        (count,) = con.execute("select count(*) from openai_batches.batches").fetchone()
    assert count == len(sim.visible())  # the load is kept


# --- 3. a refused key leaves nothing behind; report on an empty file says what to do --------


def test_a_refused_key_leaves_no_file(sim: Simulator, db: Path) -> None:
    result = extract(sim, db, env=cli_env(OPENAI_API_KEY="sk-wrong-key-123456"))
    assert result.returncode == 4, result.stderr
    assert not db.exists() and not Path(f"{db}.batchlens").exists()
    assert list(db.parent.iterdir()) == []


def test_a_refused_key_on_an_existing_database_keeps_it(sim: Simulator, db: Path) -> None:
    assert extract(sim, db).returncode == 0
    before = snapshot(db)
    result = extract(sim, db, env=cli_env(OPENAI_API_KEY="sk-wrong-key-123456"))
    assert result.returncode == 4 and snapshot(db) == before


def test_report_on_a_database_without_data_names_extract(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    result = run_cli("report", "--db", str(db), cwd=tmp_path)
    assert result.returncode == 2
    assert "batchlens extract" in result.stderr and "batchlens models" not in result.stderr


# --- 6. a reader that goes away ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["report", "demo"])
def test_a_closed_pipe_ends_quietly(sim: Simulator, tmp_path: Path, command: str) -> None:
    db = tmp_path / "piped.duckdb"
    if command == "report":
        assert extract(sim, db).returncode == 0
    args = ["--db", str(db)] + (["--batches", "40"] if command == "demo" else [])
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line: every write fails
    with os.fdopen(write, "w") as stdout:
        result = subprocess.run(
            cli_command(command, *args), cwd=tmp_path, env=cli_env(), stdout=stdout,
            stderr=subprocess.PIPE, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert result.stderr == ""
    assert result.returncode == 141


# --- 7. the simulator's clock -----------------------------------------------------------------


def newest_created_at(now: str | None) -> int:
    args = ["simulate", "--port", "0", "--batches", "50"] + (["--now", now] if now else [])
    process = subprocess.Popen(
        cli_command(*args), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        url = next(word for word in line.split() if word.startswith("http://127.0.0.1:"))
        import requests

        page = requests.get(
            f"{url.rstrip('/')}/batches", params={"limit": 1},
            headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}, timeout=10,
        ).json()  # fmt: skip
        return page["data"][0]["created_at"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_simulate_serves_a_history_that_ends_now() -> None:
    newest = newest_created_at(None)
    assert time.time() - 3600 < newest <= time.time()


def test_simulate_now_sets_the_clock() -> None:
    newest = newest_created_at("2025-06-01T12:00:00Z")
    assert 1_748_779_200 - 3600 < newest <= 1_748_779_200
    assert newest_created_at("1748779200") == newest


def test_simulate_help_prints_the_key_and_a_bad_now_is_a_usage_error(tmp_path: Path) -> None:
    helped = run_cli("simulate", "--help", cwd=tmp_path)
    assert DEFAULT_API_KEY in helped.stdout and "--now" in helped.stdout
    bad = run_cli("simulate", "--now", "yesterday", cwd=tmp_path)
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr


# --- 9. small ones ----------------------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"batchlens {importlib.metadata.version('batchlens')}"


def test_the_demo_ends_with_the_next_commands_and_its_db(tmp_path: Path) -> None:
    result = run_cli("demo", "--db", str(tmp_path / "d.duckdb"), "--batches", "40", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    hint = result.stdout.split("Next, on the demo's database:\n", 1)[1].splitlines()
    assert hint[:3] == [
        "  batchlens report --db d.duckdb",
        "  batchlens sql --db d.duckdb 'select * from openai_batches.open_batches'",
        "  batchlens check --db d.duckdb",
    ]
    for line in hint[:3]:  # each one answers, from the folder the demo ran in
        words = shlex.split(line)
        assert words[0] == "batchlens"
        assert run_cli(*words[1:], cwd=tmp_path).returncode in (0, 1, 2)  # check: 0-2


VENV_BIN = Path(sys.executable).parent


def a_checkout(tmp_path: Path) -> str:
    """A folder laid out as a checkout after `make demo` (.venv/bin, the demo's files): what
    the demo printed."""
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(VENV_BIN)
    demo = subprocess.run(
        [".venv/bin/batchlens", "demo", "--batches", "60"], cwd=tmp_path, env=cli_env(),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    assert (tmp_path / "demo.duckdb").is_file()
    return demo.stdout


@pytest.mark.slow  # a demo in a process of its own, then the shell lines one by one
def test_after_make_demo_the_printed_and_readme_lines_work_verbatim(tmp_path: Path) -> None:
    checkout, shown = tmp_path, a_checkout(tmp_path)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (readme_lines,) = [
        block.strip().splitlines()
        for block in re.findall(r"```sh\n(.*?)```", quick, re.S)
        if "demo.duckdb" in block
    ]
    printed = shown.split("Next, on the demo's database:\n", 1)[1].split("\n")
    printed = [line.strip() for line in printed if line.strip()]
    assert printed[0] == ".venv/bin/batchlens report --db demo.duckdb"
    assert any(line.startswith(".venv/bin/duckdb -readonly demo.duckdb ") for line in printed)
    said = [shlex.split(line) for line in printed]
    assert all(shlex.split(line) in said for line in readme_lines)  # the README shows them
    before = sorted(path.name for path in checkout.iterdir())
    for line in printed:
        ran = subprocess.run(
            ["bash", "-c", line], cwd=checkout, env=cli_env(), capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert ran.returncode in ((0, 1, 2) if " check " in line else (0,)), (line, ran.stderr)
        assert ran.stdout.strip() and "error" not in ran.stderr.lower(), (line, ran.stderr)
    assert sorted(path.name for path in checkout.iterdir()) == before  # no stray database


def test_a_duckdb_line_on_a_missing_file_creates_none(tmp_path: Path) -> None:
    """The README's `duckdb` lines open read-only: a mistyped path fails, and leaves no empty
    database that `batchlens sql` would then trip over."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    shell = [line for line in readme.splitlines() if line.startswith(".venv/bin/duckdb ")]
    assert shell and all(line.startswith(".venv/bin/duckdb -readonly ") for line in shell)
    missed = subprocess.run(
        [str(VENV_BIN / "duckdb"), "-readonly", "batchlens.duckdb", "select 1"], cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert missed.returncode != 0 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command", [["sql", "select 1"], ["report"], ["report", "--format", "html"]]
)
def test_an_empty_duckdb_file_is_named_as_holding_no_tables(
    tmp_path: Path, command: list[str]
) -> None:
    """What a plain `duckdb missing.duckdb` line leaves behind: a DuckDB file with nothing."""
    empty = tmp_path / "missing.duckdb"
    duckdb.connect(str(empty)).close()
    result = run_cli(*command, "--db", str(empty), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"batchlens: the database {empty} holds no batchlens tables: nothing was extracted "
        f"into it yet. Run `batchlens extract --db {empty}` (it builds the views too)"
    ]


# --- 4. an unreachable API: the cause, the attempts, and progress while waiting -------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_api_names_the_cause_and_counts_the_attempts(db: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    env = cli_env(
        RUNTIME__REQUEST_MAX_ATTEMPTS="3",
        RUNTIME__REQUEST_BACKOFF_FACTOR="1",
        RUNTIME__REQUEST_MAX_RETRY_DELAY="1",
    )
    result = run_cli("extract", "--db", str(db), "--base-url", url, cwd=db.parent, env=env)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert [line for line in lines if "retrying in 1 s" in line] == [
        f"batchlens: warning: GET {url}/batches: attempt {n} of 3 failed "
        "(connection refused: nothing listens at that address); retrying in 1 s"
        for n in (1, 2)
    ]
    assert lines[-1] == (
        f"batchlens: could not reach the API at {url}/batches: "
        "connection refused: nothing listens at that address (3 attempts)"
    )
    assert not db.exists()


def failure_of(url: str, **kwargs: object) -> BaseException:
    from openai_batches.api_client import BatchesApi

    api = BatchesApi(url, "sk-not-used-here")
    with pytest.raises(requests.RequestException) as raised:
        api.session.get(f"{url}/batches", **kwargs)
    return raised.value


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "1")


def test_tls_and_timeouts_are_told_apart(sim: Simulator, fast_retries: None) -> None:
    from openai_batches.retries import cause

    # TLS spoken to a plain-HTTP server: the handshake fails
    tls = failure_of(sim.url.replace("http://", "https://"))
    assert cause(tls) == "TLS handshake failed"
    # a server that accepts the connection and never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        timeout = failure_of(f"http://127.0.0.1:{port}/v1", timeout=0.3)
    assert cause(timeout) == "timed out waiting for the answer (request_timeout)"
    refused = failure_of(f"http://127.0.0.1:{closed_port()}/v1")
    assert cause(refused) == "connection refused: nothing listens at that address"


def test_a_name_that_does_not_resolve_is_called_dns(fast_retries: None) -> None:
    # urllib3 wraps the resolver's error as requests shows it, without a real lookup
    from urllib3.exceptions import MaxRetryError, NameResolutionError

    from openai_batches.retries import cause

    resolver = socket.gaierror(-2, "Name or service not known")
    wrapped = NameResolutionError("api.example.invalid", None, resolver)  # type: ignore[arg-type]
    error = requests.ConnectionError(MaxRetryError(None, "/v1/batches", wrapped))  # type: ignore[arg-type]
    assert cause(error) == "DNS lookup failed: the host name does not resolve"


def test_a_status_that_stays_5xx_counts_the_attempts(sim: Simulator, db: Path) -> None:
    sim.inject("503", times=50, on="list")
    result = extract(sim, db, env=cli_env(RUNTIME__REQUEST_MAX_ATTEMPTS="3"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].endswith("(3 attempts)")
    assert [status for *_, status in sim.requests] == [503, 503, 503]


# --- 5. the report fits the terminal, has colour on a TTY only, leads with what matters ------

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def loaded_db(sim: Simulator, db: Path) -> Path:
    assert extract(sim, db).returncode == 0
    return db


@pytest.mark.parametrize("columns", [80, 132])
def test_a_piped_report_is_plain_and_fits_columns(loaded_db: Path, columns: int) -> None:
    env = cli_env(COLUMNS=str(columns), TERM="xterm-256color")
    result = run_cli("report", "--db", str(loaded_db), cwd=loaded_db.parent, env=env)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    widest = max(len(line) for line in result.stdout.splitlines())
    assert columns - 10 <= widest <= columns


def test_a_report_on_a_terminal_is_coloured_and_fits_it(loaded_db: Path) -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 100, 0, 0))
    env = {k: v for k, v in cli_env(TERM="xterm-256color").items() if k != "COLUMNS"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        cli_command("report", "--db", str(loaded_db)), cwd=loaded_db.parent, env=env,
        stdout=follower, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=120)
    os.close(leader)
    output = b"".join(chunks).decode()
    assert process.returncode == 0
    assert "\x1b[" in output
    flagged = [line for line in output.splitlines() if "STUCK" in line or "OVERDUE" in line]
    assert flagged and all("\x1b[1;31m" in line for line in flagged)
    assert max(len(ANSI.sub("", line).rstrip("\r")) for line in output.splitlines()) <= 100


def test_the_open_batches_lead_with_what_needs_attention(loaded_db: Path, sim: Simulator) -> None:
    result = run_cli("report", "--db", str(loaded_db), "--format", "json", cwd=loaded_db.parent)
    batches = json.loads(result.stdout)["open_batches"]["batches"]
    keys = [
        (not b["is_long_finalizing"], not b["is_overdue"], b["created_at"], b["batch_id"])
        for b in batches
    ]
    assert keys == sorted(keys)
    truth = {b["id"]: (b["endpoint"], b.get("model")) for b in sim.visible()}
    assert {b["batch_id"]: (b["endpoint"], b["model"]) for b in batches} == {
        b["batch_id"]: truth[b["batch_id"]] for b in batches
    }


def test_markup_from_the_api_is_shown_as_it_is(loaded_db: Path) -> None:
    from batchlens.report.terminal import collect, to_table

    data = collect(loaded_db, 30)
    data["error_codes"] = [
        {"code": "[red]x", "entries": 1, "batches": 1, "example_message": "[bold]hi[/bold] [/]"}
    ]
    text = to_table(data)
    assert "[bold]hi[/bold] [/]" in text and "[red]x" in text


# --- 8. whose batches: metadata and file ids in batch_facts, `report --by metadata.KEY` -----


def test_report_by_a_metadata_key(tmp_path: Path) -> None:
    db = tmp_path / "by.duckdb"
    with Simulator(batches=300, seed=5, api_key=KEY, now=int(time.time())) as sim:
        assert extract(sim, db).returncode == 0
        visible = sim.visible()
    result = run_cli(
        "report", "--db", str(db), "--format", "json", "--days", "7", "--by", "metadata.project",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    as_of_day = datetime.fromisoformat(document["as_of"]).astimezone(UTC).date()
    expected: dict[str | None, dict[str, int]] = {}
    for batch in visible:
        day = datetime.fromtimestamp(batch["created_at"], UTC).date()
        if not (as_of_day - timedelta(days=7) < day <= as_of_day):
            continue
        value = (batch.get("metadata") or {}).get("project")
        row = expected.setdefault(value, {"batches": 0, "failed": 0, "terminal": 0, "open": 0})
        row["batches"] += 1
        row["failed"] += batch["status"] == "failed"
        terminal = batch["status"] in ("completed", "failed", "expired", "cancelled")
        row["terminal"] += terminal
        row["open"] += not terminal
    got = {
        row["value"]: {k: row[k] for k in ("batches", "failed", "terminal", "open")}
        for row in document["by"]["rows"]
    }
    assert got == expected and len(got) >= 3  # evals, search and batches without a project
    table = run_cli("report", "--db", str(db), "--by", "metadata.project", cwd=tmp_path)
    assert "by metadata.project" in table.stdout and "(no project)" in table.stdout


@pytest.mark.parametrize("by", ["owner", "metadata.", "metadata.$x"])
def test_report_by_something_else_is_a_usage_error(loaded_db: Path, by: str) -> None:
    result = run_cli("report", "--db", str(loaded_db), "--by", by, cwd=loaded_db.parent)
    assert result.returncode == 2 and "--by" in result.stderr
    assert "Traceback" not in result.stderr


def test_batch_facts_carries_metadata_and_file_ids(loaded_db: Path, sim: Simulator) -> None:
    with duckdb.connect(str(loaded_db), read_only=True) as con:
        stored = {
            batch_id: (json.loads(metadata) if metadata else metadata, files)
            for batch_id, metadata, *files in con.execute(
                "select batch_id, metadata, input_file_id, output_file_id, error_file_id "
                "from openai_batches.batch_facts"
            ).fetchall()
        }
    expected = {
        b["id"]: (b.get("metadata"), [b["input_file_id"], b["output_file_id"], b["error_file_id"]])
        for b in sim.visible()
    }
    assert stored == expected


# --- 9. the notebooks: "(no model)" everywhere, counts as integers, complete weeks only -----

COUNT_COLUMNS = {"terminal", "completed", "failed", "expired", "cancelled", "batches",
                 "entries", "active", "request_total", "request_failed", "request_completed",
                 "none_failed", "some_failed", "all_failed"}  # fmt: skip


def notebook_queries() -> list[tuple[str, str]]:
    """Every `db.df(\"\"\"...\"\"\")` query of the packaged notebooks, with its notebook."""
    from batchlens.notebooks.build import NOTEBOOKS_DIR

    found = []
    for path in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            found += [(path.stem, sql) for sql in re.findall(r'db\.df\("""(.*?)"""', source, re.S)]
    return found


def test_notebook_frames_show_models_and_counts_plainly(tmp_path: Path) -> None:
    from batchlens.notebooks.helper import open_db

    db = tmp_path / "nb.duckdb"
    with Simulator(batches=400, seed=3, api_key=KEY, now=int(time.time())) as sim:
        assert extract(sim, db).returncode == 0
    database = open_db(db)
    as_of_day = database.as_of().tz_convert("UTC").date()
    queries = notebook_queries()
    assert len(queries) >= 10
    for notebook, sql in queries:
        params = {name: None for name in re.findall(r"\$(\w+)", sql)}
        params = {k: (6.0 if k == "stuck_hours" else v) for k, v in params.items()}
        frame = database.df(sql, **params)
        for column in frame.columns:
            if column in COUNT_COLUMNS:
                assert str(frame[column].dtype).lower().startswith("int"), (notebook, column)
            if column == "model":
                assert frame[column].notna().all(), (notebook, sql)
        if "failure_rate" in frame and "week" in frame and "endpoint" in frame:  # weekly rates
            assert (
                frame["week"].map(lambda week: week.date() + timedelta(days=7)).max() <= as_of_day
            )


def test_the_readme_creates_the_folder_it_extracts_into() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Using it on your own batches", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)[1]
    made: set[str] = set()
    for line in block.splitlines():
        made |= set(re.findall(r"mkdir -p (\S+)", line))
        for path in re.findall(r"--db (\S+)", line):
            assert str(Path(path).parent) in made, f"{path}: its folder is never created"
