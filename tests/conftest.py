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


@pytest.fixture(autouse=True)
def no_key_in_any_file_written(tmp_path: Path) -> Iterator[None]:
    """After every test: the recognisable key is in no file the test's runs wrote.

    `.dlt/secrets.toml`, written by a test on purpose, is the one place it belongs.
    """
    yield
    leaked = [
        path
        for path in tmp_path.rglob("*")
        if path.is_file() and path.name != "secrets.toml" and KEY.encode() in path.read_bytes()
    ]
    assert not leaked, f"the API key was written to {leaked}"
