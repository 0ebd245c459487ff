"""Extraction against the simulator: requests, throughput against the SDK, memory, no-op runs.

    .venv/bin/python bench/bench_extract.py [--quick]

Throughput: `batchlens extract` end to end (process start to views built) against what a
user would otherwise write, the official `openai` SDK paging through the same simulator
with `limit=100`, fetch only. Runs alternate in one session; the ratio is the median of
the paired ratios. The simulator runs in this process, each client in its own.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import KEY, extract, machine_note, median, sdk_fetch

from batchlens.simulator.server import Simulator

TERMINAL = ("completed", "failed", "expired", "cancelled")


def numbers(stdout: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)\b", stdout)}


def bench_requests() -> list[str]:
    lines = ["## Requests (measured vs the bound)", ""]
    lines.append(
        "The bound of an incremental run: ceil(new / 100) + 1 list requests plus one "
        "request per batch open at the previous run; a page that refreshes several open "
        "batches at once stands in for their retrieves."
    )
    lines.append("")
    lines.append("| scenario | list requests | retrieves | total | bound |")
    lines.append("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder, Simulator(batches=12_345, api_key=KEY) as sim:
        db = Path(folder) / "r.duckdb"
        extract(sim.url, db)
        full = math.ceil(12_345 / 100)
        lines.append(
            f"| full load, 12,345 batches | {sim.list_requests} | {sim.retrieve_requests} | "
            f"{sim.list_requests + sim.retrieve_requests} | {full} |"
        )
        for days, new in ((1, 0), (2, 250), (5, 1_000)):
            open_before = sum(b["status"] not in TERMINAL for b in sim.visible())
            sim.advance(days * 86_400)
            if new:
                sim.add_batches(new, same_second=False)
            sim.reset_requests()
            extract(sim.url, db)
            bound = math.ceil(new / 100) + 1 + open_before
            total = sim.list_requests + sim.retrieve_requests
            lines.append(
                f"| incremental, {new:,} new, {open_before} open before | {sim.list_requests} | "
                f"{sim.retrieve_requests} | {total} | {bound} |"
            )
    return lines


def bench_throughput(sizes: tuple[int, ...], rounds: int) -> list[str]:
    lines = ["## Throughput: full extraction vs the SDK's fetch-only loop", ""]
    lines.append("| batches | batchlens (s) | SDK fetch-only (s) | median ratio | runs |")
    lines.append("|---|---|---|---|---|")
    for size in sizes:
        ours, theirs, ratios = [], [], []
        with tempfile.TemporaryDirectory() as folder, Simulator(batches=size, api_key=KEY) as sim:
            for i in range(rounds):
                # alternate who goes first, so neither always meets a warm page cache
                if i % 2:
                    sdk = sdk_fetch(sim.url)
                    run = extract(sim.url, Path(folder) / f"t{i}.duckdb")
                else:
                    run = extract(sim.url, Path(folder) / f"t{i}.duckdb")
                    sdk = sdk_fetch(sim.url)
                assert numbers(run.stdout)["new"] == size and int(sdk.stdout) == size
                ours.append(run.seconds)
                theirs.append(sdk.seconds)
                ratios.append(run.seconds / sdk.seconds)
        lines.append(
            f"| {size:,} | {median(ours):.2f} | {median(theirs):.2f} | "
            f"{median(ratios):.2f} | {rounds} |"
        )
    return lines


def bench_memory(sizes: tuple[int, int]) -> list[str]:
    lines = ["## Peak memory of one full extraction (RSS of the process)", ""]
    peaks = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder, Simulator(batches=size, api_key=KEY) as sim:
            runs = [extract(sim.url, Path(folder) / f"m{i}.duckdb") for i in range(2)]
        peaks.append(median([r.max_rss_mb for r in runs]))
        lines.append(f"- {size:,} batches: {peaks[-1]:.0f} MB")
    lines.append(f"- growth {sizes[1] // sizes[0]}x batches -> {peaks[1] / peaks[0]:.2f}x memory")
    return lines


def bench_noop(size: int) -> list[str]:
    with tempfile.TemporaryDirectory() as folder, Simulator(batches=size, api_key=KEY) as sim:
        db = Path(folder) / "n.duckdb"
        extract(sim.url, db)
        runs = []
        for _ in range(3):
            sim.reset_requests()
            runs.append(extract(sim.url, db))
        lists, retrieves = sim.list_requests, sim.retrieve_requests  # of the last run
        still_open = int(numbers(runs[-1].stdout)["still_open"])
        sdk = sdk_fetch(sim.url)
    return [
        f"## Incremental run with nothing new on a {size:,}-batch database",
        "",
        f"- wall time {median([r.seconds for r in runs]):.2f} s (median of 3); one run makes "
        f"{lists} list request(s) and {retrieves} retrieve(s) for {still_open} open batches",
        f"- for scale: the SDK re-reading everything takes {sdk.seconds:.2f} s",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    sizes = (2_000, 5_000) if args.quick else (20_000, 100_000)
    out = [f"Machine: {machine_note()}", ""]
    out += [*bench_requests(), ""]
    out += [*bench_throughput(sizes, rounds=2 if args.quick else 5), ""]
    out += [*bench_memory((1000, 10000) if args.quick else (10000, 100000)), ""]
    out += bench_noop(sizes[-1])
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
