"""pipelines/openai_batches_pipeline.py, run as a dlt user runs it: a script, keys in env.

It must load the simulator's whole history with no batchlens code on its path, and a
second run must add what is new without storing a batch twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from batchlens.simulator.server import DEFAULT_API_KEY, Simulator

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "pipelines" / "openai_batches_pipeline.py"


def _run(folder: Path, sim: Simulator) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SOURCES__", "BATCHLENS", "OPENAI_"))
    }
    env.update(
        SOURCES__OPENAI_BATCHES__API_KEY=DEFAULT_API_KEY,
        SOURCES__OPENAI_BATCHES__BASE_URL=sim.url,
        DLT_DATA_DIR=str(folder / "dlt"),
        RUNTIME__DLTHUB_TELEMETRY="false",
        PYTHONNOUSERSITE="1",
    )
    # -I: no working folder, no PYTHONPATH; the script's own folder (pipelines/) is
    # what puts `openai_batches` on the path, as with a `dlt init` layout.
    probe = (
        f"import runpy, sys; sys.path.insert(0, {str(SCRIPT.parent)!r}); "
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__'); "
        "print('batchlens' in sys.modules)"
    )
    return subprocess.run(
        [sys.executable, "-I", "-c", probe],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _stored(folder: Path) -> dict[str, str]:
    with duckdb.connect(str(folder / "openai_batches_pipeline.duckdb"), read_only=True) as con:
        found = con.execute("select id, status from openai_batches.batches").fetchall()
    return dict(found)


def test_the_example_loads_the_history_then_what_is_new(tmp_path: Path) -> None:
    with Simulator(batches=150, seed=3) as sim:
        first = _run(tmp_path, sim)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip().splitlines()[-1] == "False", "the example imported batchlens"
        expected = {batch["id"]: batch["status"] for batch in sim.visible()}
        assert _stored(tmp_path) == expected

        sim.advance(3 * 86400)
        added = sim.add_batches(7)
        second = _run(tmp_path, sim)
        assert second.returncode == 0, second.stderr
        stored = _stored(tmp_path)
        assert set(added) <= stored.keys()
        assert stored == {batch["id"]: batch["status"] for batch in sim.visible()}
