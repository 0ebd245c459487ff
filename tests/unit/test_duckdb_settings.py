"""The DuckDB connection of an extraction: one thread by default, settable the dlt way."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from batchlens.errors import UsageError
from batchlens.run.pipeline import open_database
from batchlens.storage.target import Target


def target(db: Path) -> Target:
    return Target("duckdb", label=str(db), db=db)


def test_the_merge_runs_on_one_thread_spilling_beside_the_database(db: Path) -> None:
    with contextlib.closing(open_database(target(db))) as connection:
        threads, spill = connection.execute(
            "select current_setting('threads'), current_setting('temp_directory')"
        ).fetchone()
    assert threads == 1
    assert Path(spill) == target(db).state_dir() / "tmp"


def test_the_settings_come_the_dlt_way(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHLENS__DUCKDB_THREADS", "2")
    monkeypatch.setenv("BATCHLENS__DUCKDB_MEMORY_LIMIT", "1GB")
    with contextlib.closing(open_database(target(db))) as connection:
        threads, limit = connection.execute(
            "select current_setting('threads'), current_setting('memory_limit')"
        ).fetchone()
    assert threads == 2 and limit.replace(" ", "") in ("953.6MiB", "1.0GB", "953.6MB")


def test_a_bad_setting_is_a_usage_error(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHLENS__DUCKDB_MEMORY_LIMIT", "plenty")
    with pytest.raises(UsageError, match="duckdb_memory_limit"):
        open_database(target(db))
    assert not db.exists()
