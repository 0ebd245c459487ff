"""`batchlens demo`: the whole product against the simulator, no API key, no network."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import duckdb

from batchlens import errors
from batchlens.config import Account
from batchlens.errors import UsageError, classify
from batchlens.output import write_atomically
from batchlens.report.page import page
from batchlens.report.terminal import collect, show
from batchlens.run.extract import Progress, run_extraction, state_dir
from batchlens.simulator.server import Simulator
from batchlens.storage.duckdb_connection import connect
from batchlens.storage.duckdb_file import check_database_path
from batchlens.views.build import build_models
from batchlens.views.queries import load

DEMO_KEY = "sk-demo-batchlens"
# A demo database says so in a schema of its own, which no extraction ever writes: the
# demo replaces a file only when it finds this mark, so it never destroys a real history.
MARK_SCHEMA = "batchlens_demo"
MARK_TABLE = f"{MARK_SCHEMA}.about"


def is_demo_database(db: Path) -> bool:
    """True for a file an earlier `batchlens demo` created (it carries the demo's mark)."""
    try:
        connection = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        if classify(exc):  # open in another process: reported with its own exit code
            raise
        return False  # not a DuckDB file: certainly not ours
    with connection:
        (found,) = connection.execute(load("demo/is_demo"), {"schema": MARK_SCHEMA}).fetchone()
    return bool(found)


def _start_afresh(db: Path) -> None:
    """Removes an earlier demo's file and state; refuses any other file (exit 2), and a
    folder that takes no file, before anything is written."""
    if db.is_file() and not is_demo_database(db):
        raise UsageError(
            f"{db} exists and is not a demo database; the demo replaces only a file it "
            "created. Pass another --db, or remove that file yourself"
        )
    check_database_path(db)  # a missing or read-only folder, a folder as --db
    db.unlink(missing_ok=True)
    Path(f"{db}.wal").unlink(missing_ok=True)
    shutil.rmtree(state_dir(db), ignore_errors=True)
    with contextlib.closing(connect(db)) as connection:
        connection.execute(f"create schema {MARK_SCHEMA}")  # an identifier: no query file
        connection.execute(load("demo/mark"))  # creates MARK_TABLE


def run_demo(db: Path, batches: int = 2000) -> int:
    # A demo starts from scratch so that it prints the same thing every time.
    _start_afresh(db)
    # The simulated history ends six hours ago, so the report's "last day" has data in it.
    now = int(time.time()) - 6 * 3600
    with Simulator(batches=batches, api_key=DEMO_KEY, now=now) as sim:
        account = Account(name="default", base_url=sim.url, api_key=DEMO_KEY)
        print(f"batchlens demo: simulated Batch API with {batches} batches at {sim.url}")
        print(run_extraction(db, account, progress=Progress()).line(db))
        # Six hours later: open batches moved on and new ones arrived, some in one second.
        sim.advance(6 * 3600)
        sim.add_batches(30, same_second=True)
        print(run_extraction(db, account, progress=Progress()).line(db))
    print(f"batchlens demo: built {len(build_models(db))} views; the report:\n")
    show(collect(db, days=30), "table")
    html = db.with_suffix(".html")
    write_atomically(html, page(db, days=30), "page")
    print(f"\nThe same as a page with charts: {html}")
    print("\nNext, on the demo's database:")
    for line in next_commands(db):
        print(f"  {line}")
    return errors.OK


def next_commands(db: Path) -> list[str]:
    """The commands to go on with, as they can be pasted: this batchlens as it was started
    (`.venv/bin/batchlens` after `make demo`), the duckdb shell beside it, and `--db`
    relative to the working directory when the file is inside it."""
    program, shell = _programs()
    where = shlex.quote(_relative(db))
    open_batches = shlex.quote("select * from openai_batches.open_batches")
    lines = [
        f"{program} report --db {where}",
        f"{program} sql --db {where} {open_batches}",
        f"{program} check --db {where}",
    ]
    if shell is not None:
        active = shlex.quote("select * from openai_batches.active_batches")
        lines.append(f"{shell} -readonly {where} {active}")
    return lines


def _programs() -> tuple[str, str | None]:
    """How to call batchlens and the duckdb shell from here: by the path this process was
    started by (`.venv/bin/batchlens`) unless $PATH finds that same program by its name."""
    started = Path(sys.argv[0])
    on_path = shutil.which("batchlens")
    if (
        started.name != "batchlens"
        or started.parent == Path()
        or (on_path is not None and Path(on_path).resolve() == started.resolve())
    ):
        return "batchlens", "duckdb" if shutil.which("duckdb") else None
    shell = started.with_name("duckdb")
    return shlex.quote(str(started)), shlex.quote(str(shell)) if shell.exists() else None


def _relative(db: Path) -> str:
    here = Path.cwd()
    return os.path.relpath(db, here) if db.is_relative_to(here) else str(db)
