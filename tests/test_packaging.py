"""What an install gets: one DuckDB line for every install path, and a wheel that works."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import duckdb
import pytest
from doc_links import broken_links

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


@pytest.mark.slow
def test_the_wheel_alone_carries_the_whole_product(tmp_path: Path) -> None:
    """Build the wheel, install it into a fresh venv, run the demo from an empty folder.

    The venv gets only the wheel; its dependencies come from this venv's site-packages
    through a .pth line, which Python appends after the new venv's own site-packages (and
    which does not activate this checkout's editable install), so `batchlens`, its SQL and
    its notebooks can only come from the wheel.
    """
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(dist)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("batchlens-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    packaged_sql = {n for n in names if n.startswith("batchlens/sql/") and n.endswith(".sql")}
    assert {f"batchlens/sql/{p.relative_to(ROOT / 'sql')}"
            for p in (ROOT / "sql").rglob("*.sql")} == packaged_sql  # fmt: skip
    assert {"batchlens/notebooks/overview.ipynb", "batchlens/notebooks/failures.ipynb"} <= names
    docs = {
        p.relative_to(ROOT / "docs")
        for p in (ROOT / "docs").rglob("*")
        if p.suffix in (".md", ".sql")
    }
    assert {f"batchlens/docs/{p}" for p in docs} <= names  # the pages the notebooks link to

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
               "--no-deps", "--no-index", str(wheel)]  # fmt: skip
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    (site_packages,) = (venv / "lib").glob("python3*/site-packages")
    (site_packages / "dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BATCHLENS_SQL_DIR")}
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, cwd=empty, env=env, capture_output=True, text=True, timeout=600, check=False
        )

    where = run(
        str(python), "-c", "import batchlens, sys; print(batchlens.__file__); print(sys.path)"
    )
    module, path = where.stdout.splitlines()
    assert Path(module).is_relative_to(site_packages), module
    assert not {str(ROOT), str(ROOT / "batchlens")} & set(ast.literal_eval(path))

    demo = run(str(venv / "bin" / "batchlens"), "demo", "--batches", "300")
    assert demo.returncode == 0, demo.stderr
    views = [name for name in packaged_sql if name.split("/")[2] in ("staging", "marts")]
    assert f"built {len(views)} views" in demo.stdout
    assert "Open now" in demo.stdout and "Terminal batches by window" in demo.stdout
    query = run(str(venv / "bin" / "batchlens"), "sql", "--db", "demo.duckdb", "--format", "csv",
                "select count(*) as n from openai_batches.batch_facts")  # fmt: skip
    loaded = sum(int(n) for n in re.findall(r" new=(\d+) ", demo.stdout))
    assert query.returncode == 0 and query.stdout.splitlines() == ["n", str(loaded)], query.stderr
    assert loaded >= 300
    copied = run(str(venv / "bin" / "batchlens"), "notebooks", "nb")
    assert copied.returncode == 0, copied.stderr
    assert sorted(p.name for p in (empty / "nb").iterdir()) == [
        "docs",
        "failures.ipynb",
        "overview.ipynb",
    ]
    assert {p.relative_to(empty / "nb" / "docs") for p in (empty / "nb" / "docs").rglob("*")
            if p.is_file()} == docs  # fmt: skip
    for path in [*(empty / "nb").glob("*.ipynb"), *(empty / "nb" / "docs").glob("*.md")]:
        assert broken_links(path) == [], path  # every link of the copies leads somewhere
