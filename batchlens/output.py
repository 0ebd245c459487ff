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
    _check_path(path, what)
    check_writable_folder(path.absolute().parent, what)


def _check_path(path: Path, what: str) -> None:
    folder = path.absolute().parent
    if not folder.is_dir():
        raise UsageError(f"the folder of the {what} does not exist: {folder}")
    if path.is_dir():
        raise UsageError(f"the {what} path is a folder: {path}")


def check_writable_folder(folder: Path, what: str) -> None:
    """Refuses a folder that takes no new file. Its permission bits do not say it all: root
    writes through them, but not onto a read-only mount, into an immutable folder or into
    `/proc`; so a file is created there and removed again."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"the folder of the {what} is not writable: {folder}")
    handle, probe = _temporary(folder, ".batchlens-probe-", what)
    os.close(handle)
    os.unlink(probe)


def _temporary(folder: Path, prefix: str, what: str) -> tuple[int, str]:
    """A new file in `folder`; a folder that takes none is a usage error, said once here."""
    try:
        return tempfile.mkstemp(dir=folder, prefix=prefix)
    except OSError as exc:
        raise UsageError(
            f"the folder of the {what} is not writable: {folder} (creating a file there "
            f"fails: {exc.strerror or exc})"
        ) from None


def write_atomically(path: Path, text: str | bytes, what: str = "output") -> None:
    """Writes `text` to a temporary file beside `path`, then renames it over `path`.

    Beside it, so that the rename is atomic; with the mode a plain `open` would give, not
    mkstemp's 0600, so that a web server or a collector running as another user can read it.
    The temporary file is the probe: creating it says whether the folder takes files, so
    no probe file is made first (the command checked the path before its work began).
    """
    path = Path(path)
    _check_path(path, what)
    handle, temporary = _temporary(path.absolute().parent, f".{path.name}.", what)
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
