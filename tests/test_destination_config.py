"""A destination configured wrongly: exit 2 and one line naming the setting, no secret.

Nothing here needs a server: a setting that is missing or unusable is found before
batchlens connects, by dlt's own credential specs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import cli_env, run_cli

PASSWORD = "p@ss w0rd%Sekret-7f3a"
# every spelling the password could leak in: raw, percent-encoded, form-encoded, dlt's URL
SPELLINGS = (PASSWORD, "p%40ss%20w0rd%25Sekret-7f3a", "p%40ss+w0rd%25Sekret-7f3a",
             "p%40ss w0rd%25Sekret-7f3a", "w0rd", "Sekret")  # fmt: skip

CASES = {
    "no password": (
        '[destination.postgres.credentials]\nhost = "127.0.0.1"\nusername = "loader"\n'
        'database = "batches"\n',
        "missing `password` of [destination.postgres.credentials]",
    ),
    "no password in the URL": (
        '[destination.postgres]\ncredentials = "postgresql://loader@127.0.0.1:5999/batches"\n',
        "missing `password` of [destination.postgres.credentials]",
    ),
    "a port that is not a number": (
        '[destination.postgres.credentials]\nhost = "127.0.0.1"\nport = "54x2"\n'
        f'username = "loader"\npassword = "{PASSWORD}"\ndatabase = "batches"\n',
        "`port` of [destination.postgres.credentials] is not valid",
    ),
    "not a connection string": (
        f'[destination.postgres]\ncredentials = "loader {PASSWORD} 127.0.0.1"\n',
        "[destination.postgres.credentials] is not a connection string",
    ),
    "nothing configured": ("", "needs its connection: set DESTINATION__POSTGRES__CREDENTIALS"),
}


RUNS = [
    *((["extract", "--base-url", "http://127.0.0.1:9/v1"], case) for case in CASES),
    # every command that opens the destination resolves it the same way
    *(([*command], "no password") for command in (["report"], ["models"], ["sql", "select 1"])),
]


@pytest.mark.parametrize(("command", "case"), RUNS, ids=[f"{c[0]}-{k}" for c, k in RUNS])
def test_a_misconfigured_postgres_destination_exits_2_naming_the_setting(
    tmp_path: Path, command: list[str], case: str
) -> None:
    secrets, says = CASES[case]
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text(secrets)
    env = {k: v for k, v in cli_env().items() if not k.startswith("DESTINATION__")}
    result = run_cli(*command, "--destination", "postgres", cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()  # one line: no traceback, no warning
    assert line.startswith("batchlens: ") and says in line, line
    for spelling in SPELLINGS:
        assert spelling not in result.stdout + result.stderr
    assert not (tmp_path / "batchlens.duckdb").exists()


def test_the_password_comes_from_its_own_variable_too(tmp_path: Path) -> None:
    """dlt's way: the fields of one connection may come from different places."""
    env = {k: v for k, v in cli_env().items() if not k.startswith("DESTINATION__")}
    env["DESTINATION__POSTGRES__CREDENTIALS"] = "postgresql://loader@127.0.0.1:9/batches"
    env["DESTINATION__POSTGRES__CREDENTIALS__PASSWORD"] = PASSWORD
    result = run_cli("sql", "select 1", "--destination", "postgres", cwd=tmp_path, env=env)
    # resolved, so it tries the (absent) server: exit 1, "cannot reach", the password unsaid
    assert result.returncode == 1 and "cannot reach the destination" in result.stderr
    for spelling in SPELLINGS:
        assert spelling not in result.stdout + result.stderr
