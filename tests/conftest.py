"""Fixtures: a simulator on 127.0.0.1 and a database path, fresh for every test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"

from batchlens.simulator.server import Simulator
from helpers import KEY


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(batches=450, seed=11, api_key=KEY) as simulator:
        yield simulator


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "batches.duckdb"
