"""Memory while loading a ~100 MB output file: streamed, it must not show in the peak RSS.

    .venv/bin/python bench/bench_files.py [--quick]

One completed batch of 50,000 requests whose output file is ~100 MB (each line's body
padded to ~2 KB, as long answers are). `batchlens extract --requests all` loads it line by
line into `batch_requests`; the baseline is the same extraction of the same history with
`--requests none`. Runs alternate in one session; the figure is the median of the paired
peak-RSS ratios (target <= 1.3). The simulator runs in this process, each client in its own.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import KEY, extract, machine_note, median

from batchlens.simulator.server import Simulator

LINES = 50_000
PADDING = 1_650  # characters added to each answer: ~2 KB a line, ~100 MB a file


def numbers(stdout: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)\b", stdout)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one pair of runs, 10,000 lines")
    args = parser.parse_args()
    lines = 10_000 if args.quick else LINES
    pairs = 1 if args.quick else 3
    with Simulator(batches=0, api_key=KEY, file_padding=PADDING) as sim:
        (batch_id,) = sim.add_batches(
            1, scenario="completed", total=lines, completed=lines, failed=0, error_file_id=None
        )
        sim.advance(3 * 86_400)  # completed: its output file is served
        (batch,) = [b for b in sim.visible() if b["id"] == batch_id]
        size = len(b"".join(sim_file_chunks(sim, batch["output_file_id"])))
        rows = []
        with tempfile.TemporaryDirectory() as folder:
            for pair in range(pairs):
                order = ("none", "all") if pair % 2 == 0 else ("all", "none")
                runs = {}
                for mode in order:
                    db = Path(folder) / f"{mode}-{pair}.duckdb"
                    runs[mode] = extract(sim.url, db, "--requests", mode)
                loaded = numbers(runs["all"].stdout)
                assert loaded["request_rows"] == lines, runs["all"].stdout
                rows.append((runs["none"], runs["all"]))
    ratios = [with_files.max_rss_mb / without.max_rss_mb for without, with_files in rows]
    print("## Memory: loading a 100 MB output file\n")
    print(
        f"One batch of {lines:,} requests, output file {size / 1e6:.0f} MB; peak RSS of "
        "`batchlens extract --requests all` (downloads and loads the file) against "
        "`--requests none` (the same extraction without files). Target: ratio <= 1.3.\n"
    )
    print("| run | without files: RSS (MB), s | with the file: RSS (MB), s | RSS ratio |")
    print("|---|---|---|---|")
    for number, ((without, with_files), ratio) in enumerate(zip(rows, ratios, strict=True)):
        print(
            f"| {number + 1} | {without.max_rss_mb:.0f}, {without.seconds:.1f} | "
            f"{with_files.max_rss_mb:.0f}, {with_files.seconds:.1f} | {ratio:.2f} |"
        )
    print(f"\nMedian RSS ratio: **{median(ratios):.2f}**\n")
    print(f"Machine: {machine_note()}")


def sim_file_chunks(sim: Simulator, file_id: str) -> list[bytes]:
    from batchlens.simulator import files

    return list(files.chunks(sim._files[file_id], sim.file_padding))


if __name__ == "__main__":
    main()
