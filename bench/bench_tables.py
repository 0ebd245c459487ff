"""The Arrow conversion of pages, against its version at a git revision, and per page shape.

    .venv/bin/python bench/bench_tables.py [--baseline REV] [--rounds N]

`batches_table` + `errors_table` over the simulator's history in chunks of 5,000 batches,
CPU time of this process (steadier than wall time on a shared machine). Baseline and
current code alternate, and the ratio is the median of the paired ratios; then the cost of
pages carrying new nested fields or values of an odd type, against the normal shape.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_note

from batchlens.simulator.faults import with_new_fields, with_odd_types
from batchlens.simulator.server import Simulator
from openai_batches import tables

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 5_000


def baseline_module(revision: str, folder: Path) -> ModuleType:
    """`tables.py` as it was at `revision`, imported inside the current package."""
    source = subprocess.run(
        ["git", "show", f"{revision}:pipelines/openai_batches/tables.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = folder / "tables_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("openai_batches._baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpu_seconds(module: ModuleType, chunks: list[list[dict]]) -> float:
    started = time.process_time()
    for chunk in chunks:
        module.batches_table(chunk, "default")
        module.errors_table(chunk, "default")
    return time.process_time() - started


def paired_ratio(a: Callable[[], float], b: Callable[[], float], rounds: int) -> float:
    """Median of b/a over rounds that alternate which one goes first."""
    ratios = []
    for i in range(rounds):
        if i % 2:
            second = b()
            first = a()
        else:
            first = a()
            second = b()
        ratios.append(second / first)
    return statistics.median(ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", default="main", help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batches", type=int, default=20_000)
    args = parser.parse_args()
    batches = [json.loads(body) for body in Simulator(batches=args.batches, seed=3)._view.bodies]
    chunks = [batches[i : i + CHUNK] for i in range(0, len(batches), CHUNK)]
    lines = [f"Machine: {machine_note()}", ""]
    with tempfile.TemporaryDirectory() as folder:
        baseline = baseline_module(args.baseline, Path(folder))
        ratio = paired_ratio(
            lambda: cpu_seconds(baseline, chunks), lambda: cpu_seconds(tables, chunks), args.rounds
        )
    seconds = statistics.median(cpu_seconds(tables, chunks) for _ in range(5))
    lines.append(
        f"- normal pages, {args.batches:,} batches: {seconds:.3f} s CPU; "
        f"current / {args.baseline} = {ratio:.2f} (median of {args.rounds} paired runs)"
    )
    for name, alter in (("new nested fields", with_new_fields), ("odd types", with_odd_types)):
        altered = [[alter(batch) for batch in chunk] for chunk in chunks]
        ratio = paired_ratio(
            lambda: cpu_seconds(tables, chunks),
            lambda altered=altered: cpu_seconds(tables, altered),
            args.rounds,
        )
        lines.append(f"- every batch with {name}: {ratio:.2f}x the normal pages")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
