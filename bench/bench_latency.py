"""Wall time at an API's latency: the simulator waits 100 ms before each answer.

    .venv/bin/python bench/bench_latency.py [--quick]

Each figure is a ratio against the time the run's requests would take one after another
(requests x latency), so it holds on any machine: below 1 means requests overlapped.
- no-op incremental run with ~300 open batches: wall / (requests one after another make x
  latency), target <= 0.35
- `--full` over a known history: wall / (pages of one pass x latency), target <= 0.4
- first run: wall / (pages x latency), target <= 1.1 (pages one after another is the floor),
  on 20,000 and on 100,000 batches; the SDK's fetch-only loop over the same 20,000 for scale
  (it reads the same pages one after another and stores nothing)
- a first run that also downloads the error files (`--requests errors`, the default) of a
  2,000-batch history: wall / (list and file requests x latency)
The list figures run with `--requests none`: they measure paging, as the targets are set.
Each is also run with the parallel settings at 1 (the sequential behaviour) for scale, and
without latency: on a machine shared with other work the fixed cost (imports, the load)
swells, so "net" is (wall - wall without latency) / (requests x latency), the share of the
requests' latency the run still waits for.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import KEY, extract, machine_note, median, sdk_fetch

from batchlens.simulator.server import Simulator

LATENCY = 0.1
SEQUENTIAL = {
    "SOURCES__OPENAI_BATCHES__RETRIEVE_CONCURRENCY": "1",
    "SOURCES__OPENAI_BATCHES__FULL_SEGMENTS": "1",
}


NO_FILES = ("--requests", "none")


def timed_runs(sim: Simulator, db: Path, rounds: int, *more: str, env=None) -> tuple[float, int]:
    """Median wall time of `rounds` runs, and the requests of the last one."""
    seconds = []
    for _ in range(rounds):
        sim.reset_requests()
        seconds.append(extract(sim.url, db, *NO_FILES, *more, env=env).seconds)
    return median(seconds), len(sim.requests)


def is_open(batch: dict) -> bool:
    return batch["status"] not in ("completed", "failed", "expired", "cancelled")


def row(
    run: str, settings: str, wall: float, fixed: float, requests: int, floor: float, target: str
) -> str:
    """`floor`: the seconds the ratio divides by (requests or pages x latency)."""
    return (
        f"| {run} | {settings} | {wall:.2f} | {fixed:.2f} | {requests} | {wall / floor:.2f} | "
        f"{(wall - fixed) / floor:.2f} | {target} |"
    )


def without_latency(sim: Simulator, db: Path, rounds: int, *more: str, env=None) -> float:
    sim.latency = 0.0
    try:
        return timed_runs(sim, db, rounds, *more, env=env)[0]
    finally:
        sim.latency = LATENCY


def first_run_with_files(size: int = 2_000) -> list[str]:
    """A first run that downloads every error file too: the files go through the pool."""
    out = []
    for label, env in (("defaults", None), ("sequential", SEQUENTIAL)):
        with tempfile.TemporaryDirectory() as folder, Simulator(batches=size, api_key=KEY) as sim:
            fixed = extract(sim.url, Path(folder) / "zero.duckdb", env=env).seconds
            sim.latency = LATENCY
            sim.reset_requests()
            wall = extract(sim.url, Path(folder) / "f.duckdb", env=env).seconds
            requests = len(sim.requests)
            run = f"first run with error files, {size:,}"
            out.append(row(run, label, wall, fixed, requests, requests * LATENCY, "-"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one round each, for a smoke run")
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    size = 20_000
    pages = math.ceil(size / 100)
    out = [f"Machine: {machine_note()}", f"Latency {LATENCY * 1000:.0f} ms per request.", ""]
    out += ["| run | settings | wall (s) | wall at 0 ms (s) | requests | ratio | net | target |"]
    out += ["|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as folder, Simulator(batches=size, api_key=KEY) as sim:
        db = Path(folder) / "l.duckdb"
        fixed = extract(sim.url, Path(folder) / "zero.duckdb", *NO_FILES).seconds
        sdk_fixed = sdk_fetch(sim.url).seconds
        sim.latency = LATENCY
        first = extract(sim.url, db, *NO_FILES).seconds
        floor = pages * LATENCY
        out.append(row(f"first run, {size:,}", "defaults", first, fixed, pages, floor, "<= 1.1"))
        # for scale: the same pages read by the SDK's loop, which stores nothing
        sdk = sdk_fetch(sim.url).seconds
        out.append(row(f"SDK fetch-only loop, {size:,}", "-", sdk, sdk_fixed, pages, floor, "-"))
        for label, env in (("defaults", None), ("sequential", SEQUENTIAL)):
            wall, requests = timed_runs(sim, db, rounds, "--full", env=env)
            fixed = without_latency(sim, db, rounds, "--full", env=env)
            run = f"--full, {size:,} known"
            out.append(row(run, label, wall, fixed, requests, floor, "<= 0.4"))
    # the default history holds ~300 open batches at 100,000; its first run is the same
    # floor at five times the pages, so the fixed cost weighs a fifth as much
    with tempfile.TemporaryDirectory() as folder, Simulator(batches=100_000, api_key=KEY) as sim:
        db = Path(folder) / "n.duckdb"
        fixed = extract(sim.url, Path(folder) / "zero.duckdb", *NO_FILES).seconds
        sim.latency = LATENCY
        first = extract(sim.url, db, *NO_FILES).seconds
        pages = math.ceil(100_000 / 100)
        row_first = row(
            "first run, 100,000", "defaults", first, fixed, pages, pages * LATENCY, "<= 1.1"
        )
        out.append(row_first)
        still_open = sum(map(is_open, sim.visible()))
        rows = []
        for label, env in (("sequential", SEQUENTIAL), ("defaults", None)):
            wall, requests = timed_runs(sim, db, rounds, env=env)
            fixed = without_latency(sim, db, rounds, env=env)
            rows.append((label, wall, fixed, requests))
        # the floor: the requests one after another make, whatever the run sends
        floor = rows[0][3] * LATENCY
        for label, wall, fixed, requests in reversed(rows):
            run = f"no-op, {still_open} open"
            out.append(row(run, label, wall, fixed, requests, floor, "<= 0.35"))
    out += first_run_with_files()
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
