"""dlt's side of a run: the pipeline, its working folder and the DuckDB session it loads in.

Each database file gets its own dlt working folder beside it (`<db>.batchlens/`), so the
incremental state belongs to the file: two databases never share it, and a copied file
brings its state along in `_dlt_pipeline_state`, which dlt restores from. A server
destination gets a working folder per server; its state lives in the server too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import dlt
import duckdb

from batchlens.errors import UsageError, classify
from batchlens.storage.target import Target
from openai_batches.settings import BATCHES_TABLE, DATASET_NAME, ERRORS_TABLE

PIPELINE_NAME = "batchlens"

# Loaded packages would otherwise keep every parquet file ever extracted, run after run.
os.environ.setdefault("LOAD__DELETE_COMPLETED_JOBS", "true")
os.environ.setdefault("LOAD__TRUNCATE_STAGING_DATASET", "true")


class _KnownArrowHintWarning(logging.Filter):
    """`metadata` is JSON text in Arrow and `json` in the schema, on purpose, every page."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "when merging arrow schema with dlt schema" not in record.getMessage()


logging.getLogger("dlt").addFilter(_KnownArrowHintWarning())


def state_dir(db: Path) -> Path:
    return Target("duckdb", label=str(db), db=db).state_dir()


def open_pipeline(target: Target, connection: Any, progress: Any = None) -> dlt.Pipeline:
    """`progress`: a dlt collector told of each normalize and load (the progress line)."""
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        progress=progress,
        destination=target.dlt_destination(connection),
        dataset_name=DATASET_NAME,
        pipelines_dir=str(target.state_dir() / "pipelines"),
    )
    # SIGINT and SIGTERM are the run's to handle (extract.py: the step in progress commits,
    # then the run stops). dlt's own handlers, in normalize and load, forget a signal that
    # lands once the load has no job left to check it before: the run would go on.
    pipeline.config.runtime.intercept_signals = False
    return pipeline


def drop_handed_over_packages(working_dir: Path) -> None:
    """Finishes a normalize-to-load handover that a kill interrupted.

    dlt renames a normalized package into `load/normalized` and then deletes its extracted
    copy; killed in between, both remain, and dlt's next normalize fails on the half-deleted
    copy. The package under `load/` is complete, so the extracted leftover can go.
    """
    extracted = working_dir / "normalize" / "extracted"
    if not extracted.is_dir():
        return
    handed_over = {
        package.name
        for stage in ("normalized", "loaded")
        for package in (working_dir / "load" / stage).glob("*")
    }
    for package in extracted.iterdir():
        if package.name in handed_over:
            shutil.rmtree(package)


def merge_extracted_packages(pipeline: dlt.Pipeline) -> None:
    """Makes a package left in `normalize/extracted` merge its batches, as it was meant to.

    dlt normalizes a leftover package with the pipeline's stored schema, not the one the
    package was extracted with (it warns "Storage schema was used"). After an account's
    first load, which appends, the stored schema says append; a run killed right after
    its extraction left a package meant to merge, and appending it stored every batch it
    refreshed twice. Merging is right for any package, a first load's included (its rows
    are unique): only slower.
    """
    extracted = Path(pipeline.working_dir) / "normalize" / "extracted"
    if not pipeline.default_schema_name or not extracted.is_dir() or not any(extracted.iterdir()):
        return
    tables = pipeline.default_schema.tables
    for name, strategy in ((BATCHES_TABLE, None), (ERRORS_TABLE, "delete-insert")):
        if name in tables and tables[name].get("write_disposition") != "merge":
            tables[name]["write_disposition"] = "merge"
            if strategy:
                tables[name]["x-merge-strategy"] = strategy  # type: ignore[typeddict-unknown-key]


# The merge of a run's rows into the table is DuckDB's only sizeable work: one thread
# holds less memory at no cost in wall time, which the API's latency sets. Its buffer pool
# keeps DuckDB's default (80 % of RAM): a cap is a hard limit for the merge, which needs
# roughly 1 KB per merged row (64 MB fails on 100,000 batches), so it is the user's choice,
# `[batchlens] duckdb_memory_limit`. Spills go to `tmp` in the state folder.
DUCKDB_SETTINGS = {"threads": "1", "memory_limit": None}


def _duckdb_settings(target: Target) -> dict[str, str]:
    settings = {
        "preserve_insertion_order": "false",
        "temp_directory": str(target.state_dir() / "tmp"),
    }
    for name, default in DUCKDB_SETTINGS.items():
        value = dlt.config.get(f"batchlens.duckdb_{name}") or default
        if value is not None:
            settings[name] = str(value)
    return settings


def open_database(target: Target) -> Any:
    """Fails fast, before extracting, when another process has the file open."""
    settings = _duckdb_settings(target) if target.kind != "postgres" else {}
    with contextlib.closing(duckdb.connect()) as scratch:  # a bad value creates no file
        _apply(scratch, settings)
    try:
        connection = target.connect()
    except duckdb.Error as exc:
        known = classify(exc)
        if known:
            raise
        message = str(exc).splitlines()[0]
        raise UsageError(f"cannot open the database {target.label}: {message}") from None
    _apply(connection, settings)
    return connection


def _apply(connection: duckdb.DuckDBPyConnection, settings: dict[str, str]) -> None:
    for name, value in settings.items():
        try:
            connection.execute(f"set {name} = '{value.replace(chr(39), chr(39) * 2)}'")
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            raise UsageError(f"[batchlens] duckdb_{name} = {value!r}: {message}") from None
