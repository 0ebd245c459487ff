"""A throwaway PostgreSQL server on 127.0.0.1 for the tests, from the Debian package.

`.ci/run` installs the package; a developer machine without it skips the PostgreSQL and
DuckLake tests with a loud reason. The server lives in a temporary folder, listens on a
free loopback port only, takes a password (so the tests exercise secrets), and is
stopped when the test session ends.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER = "batchlens"
PASSWORD = "pg-CANARY-secret-5f1e"  # recognisable: a leak anywhere is found by a byte search
DATABASE = "batchlens_test"


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> int:
    return int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields `postgresql://batchlens:<password>@127.0.0.1:<port>/batchlens_test`."""
    binaries = postgres_bin()
    if binaries is None:
        raise FileNotFoundError("PostgreSQL server binaries not found (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="batchlens-pg-"))
    data, port = folder / "data", _free_port()
    as_owner: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(folder, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    password_file = folder / "pw"
    password_file.write_text(PASSWORD)
    if as_owner:
        shutil.chown(password_file, "postgres")

    def run(*command: str) -> None:
        subprocess.run([*as_owner, *command], check=True, capture_output=True, text=True)

    run(str(binaries / "initdb"), "-D", str(data), "-U", USER, "-A", "scram-sha-256",
        f"--pwfile={password_file}", "--no-sync")  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
        "-w", "start")  # fmt: skip
    try:
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        subprocess.run(
            [str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE],
            check=True, capture_output=True, env=env,
        )  # fmt: skip
        yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    finally:
        subprocess.run([*as_owner, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "-w", "stop"], capture_output=True, check=False)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":  # a manual check: start, print the URL, stop on Enter
    with postgres_server() as url:
        print(url)
        input()
