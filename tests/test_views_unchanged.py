"""A run that changed neither the SQL nor the loaded tables' schema skips the views build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from batchlens.config import Account
from batchlens.run.extract import run_extraction
from batchlens.simulator.server import Simulator
from batchlens.storage.duckdb_connection import connect
from batchlens.views import prices as prices_module
from batchlens.views.build import SQL_DIR_ENV, build_models, discover, sql_dir
from batchlens.views.prices import PRICES_ENV
from helpers import KEY


def view_sql(db: Path, name: str) -> str:
    with connect(db, read_only=True) as con:
        (sql,) = con.execute(
            "select sql from duckdb_views() where view_name = ?", [name]
        ).fetchone()
    return sql


def extracted(db: Path) -> Path:
    """A small history, extracted (which builds the views)."""
    with Simulator(batches=120, seed=2, api_key=KEY) as sim:
        run_extraction(db, Account(name="default", base_url=sim.url, api_key=KEY))
    return db


def test_views_are_rebuilt_only_when_sql_or_schema_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = extracted(tmp_path / "v.duckdb")
    names = [model.name for model in discover()]
    assert build_models(db, only_if_changed=True) == []  # the extraction built them
    assert build_models(db) == names  # unconditional when asked for

    # a changed SQL file: its new text must reach the view
    edited = tmp_path / "sql"
    shutil.copytree(sql_dir(), edited)
    facts = edited / "marts" / "open_batches.sql"
    facts.write_text(facts.read_text().rstrip().rstrip(";") + "\nlimit 123456\n")
    monkeypatch.setenv(SQL_DIR_ENV, str(edited))
    assert build_models(db, only_if_changed=True) == names
    assert "123456" in view_sql(db, "open_batches")
    assert build_models(db, only_if_changed=True) == []
    monkeypatch.delenv(SQL_DIR_ENV)
    assert build_models(db, only_if_changed=True) == names
    assert "123456" not in view_sql(db, "open_batches")

    # a column the loaded table gained, and a view someone dropped
    with connect(db) as con:
        con.execute("alter table openai_batches.batches add column surprise bigint")
    assert build_models(db, only_if_changed=True) == names
    with connect(db) as con:
        con.execute("drop view openai_batches.open_batches")
    assert build_models(db, only_if_changed=True) == names
    assert build_models(db, only_if_changed=True) == []


def test_prices_change_the_fingerprint_without_reading_the_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = extracted(tmp_path / "p.duckdb")
    names = [model.name for model in discover()]
    with connect(db, read_only=True) as con:
        (model,) = con.execute("select min(model) from openai_batches.batches").fetchone()
    prices = tmp_path / "prices.csv"
    prices.write_text(f"model,input_mtok,cached_input_mtok,output_mtok\n{model},1,1,2\n")
    monkeypatch.setenv(PRICES_ENV, str(prices))
    assert build_models(db, only_if_changed=True) == names  # an override file appeared
    assert build_models(db, only_if_changed=True) == []
    prices.write_text(f"model,input_mtok,cached_input_mtok,output_mtok\n{model},1,1,3\n")
    assert build_models(db, only_if_changed=True) == names  # one of its prices changed
    with connect(db, read_only=True) as con:
        (output,) = con.execute(
            "select output_mtok from openai_batches.model_prices where model = ?", [model]
        ).fetchone()
    assert output == 3
    monkeypatch.setattr(prices_module, "batch_discounts", lambda: {"openai": 0.4})
    assert build_models(db, only_if_changed=True) == names  # the batch discount changed
    # deciding that nothing changed does not search the catalogue (0.4 s of imports)
    monkeypatch.setattr(prices_module, "catalogue_prices", lambda model: 1 / 0)
    assert build_models(db, only_if_changed=True) == []
