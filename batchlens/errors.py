"""Exit codes, the errors that carry them, and the redaction every message goes through."""

from __future__ import annotations

import re
from collections.abc import Iterable

import duckdb
import requests

OK = 0
FAILED = 1  # failure after retries, or an answer that is not a valid list page
USAGE = 2  # usage or configuration error
LOCKED = 3  # another process holds the database
REFUSED = 4  # the API refused the credentials or the URL (401/403/404)
# 5: `extract` loaded, but the views were not rebuilt (batchlens.run.extract.ViewsNotBuiltError)
FILES_PENDING = 6  # loaded, but N files could not be downloaded; the next run fetches them
INTERRUPTED = 130  # SIGINT or SIGTERM, as shells report it
BROKEN_PIPE = 141  # stdout's reader went away (`| head`): what shells report for SIGPIPE


class BatchlensError(Exception):
    """A known condition: printed as one line, exits with its code, never a traceback."""

    exit_code = FAILED


class UsageError(BatchlensError):
    exit_code = USAGE


class LockedError(BatchlensError):
    exit_code = LOCKED


class MissingDatabaseError(UsageError):
    """A command that reads the history was pointed at a file that is not there."""

    def __init__(self, db: object) -> None:
        super().__init__(f"the database does not exist: {db}; run `batchlens extract` first")


def require_database(db: object) -> None:
    """Raises MissingDatabaseError unless `db` (a DuckDB file's path) is a file."""
    from pathlib import Path

    if not Path(str(db)).is_file():
        raise MissingDatabaseError(db)


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its type's name when it says nothing)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def causes(exc: BaseException) -> Iterable[BaseException]:
    """The exception and everything it wraps: dlt wraps ours in its step exceptions."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


_DUCKDB_LOCK = re.compile(r"Conflicting lock is held in (?P<holder>.+?) \(PID (?P<pid>\d+)\)")


def classify(exc: BaseException) -> tuple[int, str] | None:
    """Exit code and one-line message for a known failure, None for a bug."""
    for cause in causes(exc):
        if isinstance(cause, KeyboardInterrupt):  # dlt's SignalReceivedException too
            return INTERRUPTED, "interrupted; the next run completes or discards what this one left"
        if isinstance(cause, BatchlensError):
            return cause.exit_code, str(cause)
        # A source's API errors say what they are (`outcome`, the source contract), so no
        # source is imported here: `batchlens --help` loads no dlt.
        outcome = getattr(type(cause), "outcome", None)
        if outcome == "refused":
            return REFUSED, str(cause)
        if outcome == "rejected":
            hint = ""
            if "x-portkey-provider" in str(cause):
                hint = " (pass --provider openai, or an x-portkey-config header)"
            return USAGE, f"{cause}{hint}"
        if outcome == "failed":
            return FAILED, str(cause)
        if isinstance(cause, requests.Timeout):
            return FAILED, (
                f"the API did not answer in time at {_url_of(cause)}: "
                f"{unreachable_cause(cause)}{_attempts(cause)}"
            )
        if isinstance(cause, requests.ConnectionError):
            return FAILED, (
                f"could not reach the API at {_url_of(cause)}: "
                f"{unreachable_cause(cause)}{_attempts(cause)}"
            )
        if isinstance(cause, requests.RequestException):
            return FAILED, f"request failed after retries: {cause}"
        if isinstance(cause, duckdb.IOException) and "lock" in str(cause).lower():
            return LOCKED, duckdb_lock_message(str(cause))
        if isinstance(cause, duckdb.Error) and "Unable to connect to Postgres" in str(cause):
            return postgres_connection_failure(str(cause))  # DuckLake's catalog
        if type(cause).__module__.startswith("psycopg2") and type(cause).__name__ in (
            "OperationalError",
            "InterfaceError",
        ):
            return postgres_connection_failure(str(cause))
    return None


def postgres_connection_failure(text: str) -> tuple[int, str]:
    """A server destination that cannot be reached (1) or refuses the login (2)."""
    first = " ".join(text.split())[:300]
    if "password authentication failed" in text or "does not exist" in text:
        return USAGE, f"the destination refused the connection settings: {first}"
    if "no password supplied" in text:
        return USAGE, (
            "the destination's server wants a password and none is configured: set `password` "
            "of the destination's credentials in .dlt/secrets.toml"
        )
    return FAILED, f"cannot reach the destination: {first}"


def duckdb_lock_message(text: str) -> str:
    match = _DUCKDB_LOCK.search(text)
    holder = f"process {match['pid']} ({match['holder']})" if match else "another process"
    return (
        f"the database is open in {holder}; DuckDB allows one writer and no readers "
        "beside it. Close that session (duckdb CLI, notebook) and run again"
    )


def unreachable_cause(exc: BaseException) -> str:
    """Why a request never got an answer (DNS, refused, TLS, timeout): the source's words."""
    from openai_batches.retries import cause

    return cause(exc)


def _attempts(exc: BaseException) -> str:
    """How many attempts were made, when the retries counted them (see retries.watch)."""
    attempts = getattr(exc, "attempts", None)
    return f" ({attempts} attempt{'s' if attempts != 1 else ''})" if attempts else ""


def _url_of(exc: requests.RequestException) -> str:
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    return url.split("?")[0] if url else str(exc).splitlines()[0]


class Redactor:
    """Removes secrets from any text before it is printed or logged.

    A server may echo a key in another spelling than the one sent: percent-encoded (in a
    URL it quotes back) or base64 (a `Basic` header, a JWT-like blob). Each secret is
    removed in every spelling it can take inside a longer text (`spellings`).
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self.secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        # Short values would redact innocent words; real keys are long.
        if not secret or len(secret) < 6:
            return
        found = set(self.secrets) | spellings(secret)
        self.secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def spellings(secret: str) -> set[str]:
    """`secret` as itself, percent-encoded and in base64, at any offset of a longer text.

    A base64 text encodes 3 bytes as 4 characters, so where the secret starts in the
    encoded text (its offset modulo 3) changes its characters: each of the three
    alignments is kept, cut to the characters that depend on the secret's bytes alone.
    """
    import base64
    from urllib.parse import quote, quote_plus

    raw = secret.encode()
    found = {secret, quote(secret, safe=""), quote_plus(secret)}
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + raw).decode()
            start = 4 if offset else 0  # the first group mixes in the bytes before it
            end = 4 * ((offset + len(raw)) // 3)  # the last group, those after it
            if end - start >= 8:
                found.add(encoded[start:end])
    return {spelling for spelling in found if len(spelling) >= 6}
