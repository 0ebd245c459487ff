"""`batchlens notebooks DIR` never writes through a link to a file outside DIR."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchlens.errors import UsageError
from batchlens.notebooks.export import export, packaged


def test_force_replaces_a_linked_notebook_and_leaves_its_target_alone(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    folder = tmp_path / "copies"
    folder.mkdir()
    name = sorted(packaged())[0]
    (folder / name).symlink_to(outside)

    with pytest.raises(UsageError, match="--force"):
        export(folder)
    assert (folder / name).is_symlink()

    export(folder, force=True)
    assert outside.read_text() == "precious"
    assert not (folder / name).is_symlink()
    assert (folder / name).read_bytes() == packaged()[name]


def test_a_linked_docs_folder_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = tmp_path / "copies"
    folder.mkdir()
    (folder / "docs").symlink_to(elsewhere)

    with pytest.raises(UsageError, match="is a link; nothing was copied"):
        export(folder, force=True)
    assert list(elsewhere.iterdir()) == []
    assert sorted(path.name for path in folder.iterdir()) == ["docs"]
