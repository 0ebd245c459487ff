"""`batchlens demo`: the whole product against the simulator, no API key, no network."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from . import errors
from .config import Account
from .extract import Progress, run_extraction, state_dir
from .models import build_models
from .report import report
from .simulator.server import Simulator

DEMO_KEY = "sk-demo-batchlens"


def run_demo(db: Path, batches: int = 2000) -> int:
    # A demo starts from scratch so that it prints the same thing every time.
    db.unlink(missing_ok=True)
    Path(f"{db}.wal").unlink(missing_ok=True)
    shutil.rmtree(state_dir(db), ignore_errors=True)
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
    print(report(db, fmt="table", days=30))
    print(
        f'\nExplore it: batchlens sql --db {db} "select * from openai_batches.batch_facts limit 10"'
        f'\n       or: duckdb {db} "select * from openai_batches.batch_facts limit 10"'
    )
    return errors.OK
