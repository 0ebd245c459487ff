"""What an install gets: one DuckDB line for every install path."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]


def duckdb_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["ducklake"]]
    pins = {}
    for requirement in requirements:
        match = re.fullmatch(r"(duckdb[\w-]*)==([\d.]+)", requirement)
        if match:
            pins[match[1]] = match[2]
    return pins


def test_every_install_path_gets_the_same_duckdb_line() -> None:
    pins = duckdb_pins()
    assert pins.keys() == {
        "duckdb",
        "duckdb-cli",
        "duckdb-extension-ducklake",
        "duckdb-extension-postgres-scanner",
    }
    assert len(set(pins.values())) == 1, pins
    assert duckdb.__version__ == pins["duckdb"]
    shell = Path(sys.executable).parent / "duckdb"
    version = subprocess.run(
        [str(shell), "-version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert version.startswith(f"v{pins['duckdb']} "), version
