"""The layout's promises: who may import whom, and what the command loads to say hello.

A newcomer relies on these boundaries (docs/development.md): the dlt sources under
pipelines/ stand alone, batchlens' packages import each other in one direction only, and
`batchlens --help` answers without loading dlt or pandas (a second, not a tenth of one).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    """Every absolute module name `path` imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    mapped = {"pipelines": [], "sql": ["batchlens", "sql"], "notebooks": ["batchlens", "notebooks"]}
    parts = mapped.get(parts[0], [parts[0]]) + parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _product_modules() -> dict[str, Path]:
    files = [*ROOT.glob("batchlens/**/*.py"), *ROOT.glob("notebooks/*.py")]
    return {_module_name(path): path for path in files}


@pytest.mark.parametrize(
    "source",
    sorted(
        p.name
        for p in (ROOT / "pipelines").iterdir()
        if p.is_dir() and (p / "__init__.py").exists()
    ),
)
def test_a_source_imports_nothing_from_batchlens(source: str) -> None:
    for path in (ROOT / "pipelines" / source).rglob("*.py"):
        batchlens = sorted(name for name in _imports(path) if name.split(".")[0] == "batchlens")
        assert not batchlens, f"{path.relative_to(ROOT)} imports {batchlens}"


def test_batchlens_packages_import_each_other_in_one_direction() -> None:
    """No circle between the concerns: storage and views never reach up into run, report
    or check, and no two packages need each other."""
    modules = _product_modules()

    def package(name: str) -> str:
        parts = name.split(".")
        return (
            ".".join(parts[:2])
            if len(parts) > 2 or (name in modules and modules[name].name == "__init__.py")
            else name
        )

    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        for imported in _imports(path):
            target = next(
                (m for m in (imported, imported.rpartition(".")[0]) if m in modules), None
            )
            if target and package(target) != package(name):
                edges.setdefault(package(name), set()).add(package(target))
    # a depth-first search for a cycle in the package graph
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        trail.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt) :], nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        trail.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


@pytest.mark.parametrize(
    "words", [["--version"], ["--help"], ["extract", "--help"], ["check", "--help"]]
)
def test_the_command_says_hello_without_dlt_or_pandas(words: list[str]) -> None:
    probe = (
        "import sys\n"
        "from batchlens import cli\n"
        "try:\n"
        f"    cli.main({words!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('dlt', 'pandas', 'pyarrow') if m in sys.modules]\n"
        "print(','.join(heavy), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stderr.strip() == "", f"batchlens {' '.join(words)} imported {done.stderr.strip()}"
    assert done.stdout.strip(), "the command printed nothing"


def test_the_simulator_serves_the_timestamps_the_source_reads() -> None:
    """The simulator spells the API's fields itself (it stands for the API): they agree."""
    from batchlens.simulator.history import TIMESTAMP_FIELDS as served
    from openai_batches.settings import TIMESTAMP_FIELDS as read

    assert served == read
