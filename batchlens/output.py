"""Every file batchlens writes for a reader (a page, a report, a Prometheus textfile).

One writer, so that every output has the same guarantees: a path that cannot be written
is refused before any work is done (exit 2), and a reader (a web server, node_exporter's
textfile collector, a browser tab) sees the old file or the new one, never a part.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from batchlens.errors import UsageError


def check_output(path: Path, what: str = "output") -> None:
    """Refuses a path that cannot be written, before any work is done (exit 2)."""
    path = Path(path)
    folder = path.absolute().parent
    if not folder.is_dir():
        raise UsageError(f"the folder of the {what} does not exist: {folder}")
    if path.is_dir():
        raise UsageError(f"the {what} path is a folder: {path}")
    check_writable_folder(folder, what)


def check_writable_folder(folder: Path, what: str) -> None:
    """Refuses a folder that takes no new file. Its permission bits do not say it all: root
    writes through them, but not onto a read-only mount, into an immutable folder or into
    `/proc`; so a file is created there and removed again."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"the folder of the {what} is not writable: {folder}")
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".batchlens-probe-")
    except OSError as exc:
        raise UsageError(
            f"the folder of the {what} is not writable: {folder} (creating a file there "
            f"fails: {exc.strerror or exc})"
        ) from None
    os.close(handle)
    os.unlink(probe)


def write_atomically(path: Path, text: str | bytes, what: str = "output") -> None:
    """Writes `text` to a temporary file beside `path`, then renames it over `path`.

    Beside it, so that the rename is atomic; with the mode a plain `open` would give, not
    mkstemp's 0600, so that a web server or a collector running as another user can read it.
    """
    path = Path(path)
    check_output(path, what)
    handle, temporary = tempfile.mkstemp(dir=path.absolute().parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(text.encode() if isinstance(text, str) else text)
            file.flush()
            os.fsync(file.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
