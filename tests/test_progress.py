"""A long run says on stderr, every few seconds, how far each phase has got.

Measured on a real run against the simulator, slowed down so that every phase lasts
long enough to be reported: the pages, the file downloads (bytes and lines), dlt's load
and the views, each in the same line format.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchlens.config import Account
from batchlens.run.extract import Progress, run_extraction
from batchlens.simulator.server import Simulator
from helpers import KEY

LINE = re.compile(
    r"^batchlens: (?P<phase>reading|loading|building the views): (?P<pages>\d+) pages, "
    r"(?P<batches>\d+) batches, \d+ retrieves, (?P<files>\d+) files "
    r"\((?P<mb>[\d.]+) MB, (?P<lines>\d+) lines\) so far \(\d+ s\)"
)


def test_every_phase_reports_in_one_format(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Simulator(batches=150, seed=5, api_key=KEY, latency=0.002) as sim:
        account = Account(name="default", base_url=sim.url, api_key=KEY)
        progress = Progress(first_after=0.0, every=0.02)
        summary = run_extraction(db, account, progress=progress)
    lines = [line for line in capsys.readouterr().err.splitlines() if "so far (" in line]
    assert lines, "no progress line"
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), [line for line, found in zip(lines, parsed, strict=True) if not found]
    phases = [found["phase"] for found in parsed if found]
    assert {"reading", "loading", "building the views"} <= set(phases)
    assert phases[-1] == "building the views"  # the views come last, and nothing after
    last = parsed[-1]
    assert int(last["pages"]) == summary.pages and int(last["files"]) == summary.files
    assert float(last["mb"]) > 0 and int(last["lines"]) == summary.request_rows
    # the counts only grow
    pages = [int(found["pages"]) for found in parsed if found]
    assert pages == sorted(pages)


def test_a_short_run_prints_no_progress(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Simulator(batches=30, seed=5, api_key=KEY) as sim:
        account = Account(name="default", base_url=sim.url, api_key=KEY)
        run_extraction(db, account, progress=Progress())
    assert "so far (" not in capsys.readouterr().err
