"""Batches' error and output files, request by request: which to fetch, streamed, parsed.

A terminal batch's files never change, so each is fetched once: the ledger table
`batch_files` (in the destination, committed with the rows) says which files are done,
and only terminal batches' files that it does not hold, or holds as `pending`, are
downloaded. A file is read line by line from the socket and every line is cut down to a
few ids, codes and token counts at once: bodies hold users' data, and an output file can
be hundreds of MB. A body that breaks off is resumed where it stopped; a file that still
fails after its retries is recorded as `pending` and costs that file only.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import dlt
import orjson
import pyarrow as pa
import requests

from . import retries
from .api_client import (
    ApiRefusedError,
    ApiRejectedRequestError,
    BatchesApi,
    BatchesApiError,
    InvalidPageError,
    api_message,
)
from .parallel import Emit, gather
from .providers import map_status
from .settings import FILES_TABLE, REQUESTS_TABLE, TERMINAL_STATUSES
from .tables import TIMESTAMP

log = logging.getLogger("batchlens")

# `--requests`: which files to download. Error files are usually small; output files can
# be hundreds of MB and are only needed for per-request usage.
REQUESTS_MODES: dict[str, tuple[str, ...]] = {
    "none": (),
    "errors": ("error",),
    "all": ("error", "output"),
}
DEFAULT_REQUESTS_MODE = "errors"
FILE_FIELDS = {"error": "error_file_id", "output": "output_file_id"}
CHUNK_ROWS = 5_000  # rows per Arrow table handed to dlt: memory stays flat on any file
READ_BYTES = 256 * 1024
MESSAGE_CHARS = 1_000  # an error message is a diagnosis, not a place to keep a payload

REQUEST_SCHEMA = pa.schema(
    [
        pa.field("account", pa.string(), nullable=False),
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("file_id", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("line_id", pa.string()),
        pa.field("custom_id", pa.string(), nullable=False),
        pa.field("status_code", pa.int64()),
        pa.field("error_code", pa.string()),
        pa.field("error_type", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("error_param", pa.string()),
        pa.field("model", pa.string()),
        pa.field("input_tokens", pa.int64()),
        pa.field("cached_tokens", pa.int64()),
        pa.field("output_tokens", pa.int64()),
        pa.field("reasoning_tokens", pa.int64()),
        pa.field("total_tokens", pa.int64()),
    ]
)
FILE_SCHEMA = pa.schema(
    [
        pa.field("account", pa.string(), nullable=False),
        pa.field("file_id", pa.string(), nullable=False),
        pa.field("batch_id", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("state", pa.string()),
        pa.field("lines", pa.int64()),
        pa.field("bad_lines", pa.int64()),
        pa.field("bytes", pa.int64()),
        pa.field("loaded_at", TIMESTAMP),
        # a `pending` file: why its last download failed, and since when it has been failing
        pa.field("failure_reason", pa.string()),
        pa.field("first_failed_at", TIMESTAMP),
    ]
)
_DLT_TYPES = {pa.string(): "text", pa.int64(): "bigint", TIMESTAMP: "timestamp"}


def _columns(schema: pa.Schema) -> dict[str, Any]:
    """Hinted, so both tables exist with every column even while empty or all null."""
    return {
        field.name: {"data_type": _DLT_TYPES[field.type], "nullable": field.nullable}
        for field in schema
    }


# Merge on the request: a file is loaded once, but a run that re-reads it (after a ledger
# was lost, say) must not double the rows. The key is the one the API promises unique.
REQUESTS_HINTS = dlt.mark.make_hints(
    table_name=REQUESTS_TABLE,
    write_disposition="merge",
    primary_key=("account", "batch_id", "custom_id"),
    columns=_columns(REQUEST_SCHEMA),
)
# One row per file and account: the ledger of what was fetched and what is gone for good.
FILES_HINTS = dlt.mark.make_hints(
    table_name=FILES_TABLE,
    write_disposition="merge",
    primary_key=("account", "file_id"),
    columns=_columns(FILE_SCHEMA),
)


@dataclass(frozen=True)
class FileToFetch:
    batch_id: str
    kind: str  # "error" | "output"
    file_id: str
    failed_since: float | None = None  # a file the ledger holds as pending: its first failure


def requests_kinds(mode: str) -> tuple[str, ...]:
    if mode not in REQUESTS_MODES:
        raise ValueError(f"requests must be one of {', '.join(REQUESTS_MODES)}, got {mode!r}")
    return REQUESTS_MODES[mode]


def terminal_files(batches: Iterable[dict], kinds: Iterable[str]) -> Iterator[FileToFetch]:
    """The files of the batches that reached a terminal status: they will not change again."""
    for batch in batches:
        status, _ = map_status(batch.get("status"))
        if status not in TERMINAL_STATUSES:
            continue
        for kind in kinds:
            file_id = batch.get(FILE_FIELDS[kind])
            if isinstance(file_id, str) and file_id:
                yield FileToFetch(str(batch["id"]), kind, file_id)


# a query on the destination: SQL in DuckDB's dialect with `$name` parameters -> rows;
# raises when it fails (no table yet)
Read = Callable[..., list[tuple]]


def ledger_in_destination(
    read: Read, dataset: str, account: str, kinds: Iterable[str]
) -> tuple[set[str], list[FileToFetch]]:
    """The file ids the ledger holds as done, and the files to fetch: the stored terminal
    batches' files it does not hold, then those it holds as `pending` (their download failed).

    The first list covers a database loaded before files were fetched, or with fewer kinds
    (`--requests errors`, then `all`), or a run stopped before its downloads: those batches
    are not in this run's pages.
    """
    kinds = tuple(kinds)
    if not kinds:
        return set(), []
    ledger = f"{dataset}.{FILES_TABLE}"
    try:
        rows = read(
            f"select file_id, state from {ledger} where account = $account", account=account
        )
        known = {str(file_id) for file_id, state in rows if state != "pending"}
        has_ledger = True
    except Exception:  # no ledger yet: a first run, or a database from before files
        known, has_ledger = set(), False
    statuses = ", ".join(f"'{status}'" for status in sorted(TERMINAL_STATUSES))
    due: list[FileToFetch] = []
    try:
        for kind in kinds:
            column = FILE_FIELDS[kind]
            unknown = (
                f" and not exists (select 1 from {ledger} as f "
                f"where f.account = b.account and f.file_id = b.{column})"
                if has_ledger
                else ""
            )
            rows = read(
                f"select b.id, b.{column} from {dataset}.batches as b where b.account = $account "
                f"and b.status in ({statuses}) and b.{column} is not null{unknown}",
                account=account,
            )
            due.extend(FileToFetch(batch_id, kind, file_id) for batch_id, file_id in rows)
    except Exception:  # no batches table yet
        return known, []
    if has_ledger:
        due.extend(_pending_in_ledger(read, ledger, account, kinds))
    return known, due


def _pending_in_ledger(read: Read, ledger: str, account: str, kinds: tuple[str, ...]) -> list:
    """The files whose download failed at an earlier run, oldest failure first."""
    try:
        rows = read(
            "select batch_id, kind, file_id, epoch(first_failed_at) from "
            f"{ledger} where account = $account and state = 'pending' order by first_failed_at",
            account=account,
        )
    except Exception:  # a ledger from before pending files: none can be pending
        return []
    return [
        FileToFetch(str(batch_id), str(kind), str(file_id), float(since) if since else None)
        for batch_id, kind, file_id, since in rows
        if kind in kinds
    ]


@dataclass
class FileRead:
    """What one download found: the ledger row of the file."""

    file: FileToFetch
    state: str = "loaded"  # "loaded" | "expired" | "missing" | "pending"
    lines: int = 0
    bad_lines: int = 0
    bytes: int = 0
    failure_reason: str | None = None  # pending: why the download failed
    first_failed_at: float | None = None


class DownloadFailedError(BatchesApiError):
    """A file's body kept breaking off, as many times as the retry policy allows."""


class GatewayFilesError(BatchesApiError):
    """The Portkey gateway answers 500 to every file content request: no retry will help."""


class DownloadStopped(Exception):
    """The run was asked to stop: the download in progress is abandoned, not recorded."""


class FileDownloader:
    """Streams files through the API client's session (same auth, gateway headers, retries).

    Counts its own requests: downloads are not list or retrieve requests, whose bound
    (`ceil(new / 100) + 1` plus one per batch open last time) they must not blur.
    """

    def __init__(self, api: BatchesApi) -> None:
        self.api = api
        self._lock = threading.Lock()  # the counters are shared by the download workers
        self.requests = 0
        self.downloaded = 0
        self.rows = 0
        # bytes received by every download so far, complete or not: what a progress line
        # shows while files stream (approximate: the workers add to it without a lock)
        self.bytes_read = 0
        self.failed = 0

    def read(
        self, file: FileToFetch, stop: threading.Event | None = None
    ) -> Iterator[tuple | FileRead]:
        """The file's parsed lines (see `parse_line`), then its `FileRead` (ledger row) last.

        A 404 means the file is gone for good: `expired` when the Files API no longer
        knows it either (OpenAI deletes batch files after 30 days by default), `missing`
        when it still lists the file but serves no content. A body that breaks off is
        asked again from where it stopped (`Range`), or from the start with the bytes
        already read skipped when the server ignores the range: files never change, so
        no line is read twice. That counts as an attempt of the session's retry policy,
        with its backoff; once they are spent, `DownloadFailedError`. With `stop` set, the
        download ends at its next piece with `DownloadStopped`.
        """
        read = FileRead(file)
        self._count(requests=1)
        url = f"{self.api.base_url}/files/{file.file_id}/content"
        policy = retries.policy(self.api.session)
        lines = _LineSplitter(read)
        ranges = True  # False once the server has shown a range would not line up
        attempt = 1
        while True:
            offset = read.bytes
            headers = {"Range": f"bytes={offset}-"} if offset and ranges else None
            response = self.api.session.get(url, stream=True, headers=headers)
            if response.status_code == 404:
                # Give the connection back before asking the Files API: a worker holding two
                # at once overflows the pool, which sizes one connection per worker.
                response.close()
                gone = FileRead(file, "expired" if self._gone(file.file_id) else "missing")
                yield gone
                return
            if response.status_code == 416 and offset:  # nothing after what was read: the end
                response.close()
                break
            with response:
                try:
                    _check(response, f"GET /files/{file.file_id}/content")
                except BatchesApiError as exc:
                    hint = self._gateway_hint(response)
                    if hint:
                        raise GatewayFilesError(f"{exc}{hint}") from None
                    raise
                encoding = response.headers.get("Content-Encoding", "identity").lower()
                ranges = ranges and encoding == "identity"  # ranges count encoded bytes
                skip = _already_read(response, offset)
                if skip is None:  # a range starting past what was read: start over
                    ranges, skip = False, None
                try:
                    if skip is None:
                        raise requests.exceptions.ContentDecodingError("the range does not line up")
                    for chunk in response.iter_content(chunk_size=READ_BYTES):
                        if stop is not None and stop.is_set():
                            raise DownloadStopped(file.file_id)
                        if skip:
                            taken = min(skip, len(chunk))
                            chunk, skip = chunk[taken:], skip - taken
                        self.bytes_read += len(chunk)  # for progress lines only: no lock
                        for line in lines.feed(chunk):
                            yield from self._parsed(line, read)
                    if skip:
                        raise requests.exceptions.ContentDecodingError("shorter than before")
                    break
                except requests.RequestException as exc:
                    why = f"the download broke off after {read.bytes} bytes ({retries.cause(exc)})"
                    if attempt >= policy.attempts:
                        raise DownloadFailedError(
                            f"{why}; {attempt} attempt{'s' if attempt > 1 else ''}"
                        ) from None
                    wait = policy.wait(attempt)
                    retries.announce(f"GET {url}", attempt, policy.attempts, why, wait)
                    if stop is not None:
                        stop.wait(wait)
                    else:
                        time.sleep(wait)
                    attempt += 1
        for line in lines.finish():
            yield from self._parsed(line, read)
        self._count(downloaded=1, rows=read.lines)
        if read.bad_lines:
            log.warning(
                "file %s (batch %s): %d line(s) skipped, not JSON or without custom_id",
                file.file_id,
                file.batch_id,
                read.bad_lines,
            )
        yield read

    @staticmethod
    def _parsed(line: bytes, read: FileRead) -> Iterator[tuple]:
        row = parse_line(line)
        if row is None:
            read.bad_lines += 1
            return
        read.lines += 1
        yield row

    def _gateway_hint(self, response: Any) -> str:
        """Portkey's gateway (1.15.2) answers every file content request 500: say so."""
        names = {name.lower() for name in self.api.session.headers}
        through_portkey = bool(names & {"x-portkey-provider", "x-portkey-config"})
        if not through_portkey or response.status_code != 500:
            return ""
        return (
            " (the Portkey gateway fails on every /files/{id}/content request, a bug of its "
            '1.15.x releases: extract with --requests none, or requests = "none" under '
            "[sources.openai_batches], while it lasts)"
        )

    def _count(
        self, requests: int = 0, downloaded: int = 0, rows: int = 0, failed: int = 0
    ) -> None:
        with self._lock:
            self.requests += requests
            self.downloaded += downloaded
            self.rows += rows
            self.failed += failed

    def counts(self) -> tuple[int, int, int, int]:
        """(requests, files downloaded, rows, files failed) so far: a step's are the difference."""
        with self._lock:
            return self.requests, self.downloaded, self.rows, self.failed

    def _gone(self, file_id: str) -> bool:
        self._count(requests=1)
        response = self.api.session.get(f"{self.api.base_url}/files/{file_id}")
        if response.status_code == 404:
            return True
        _check(response, f"GET /files/{file_id}")
        try:
            expires_at = orjson.loads(response.content).get("expires_at")
        except (orjson.JSONDecodeError, AttributeError):
            return False
        return isinstance(expires_at, int | float) and expires_at <= time.time()


def _check(response: Any, what: str) -> None:
    status = response.status_code
    if status in (401, 403, 404):
        raise ApiRefusedError(status, api_message(response))
    if 400 <= status < 500 and status != 429:
        raise ApiRejectedRequestError(status, api_message(response))
    if status >= 400:
        raise BatchesApiError(
            f"{what} failed with HTTP {status} after retries: {api_message(response)}"
        )


def _already_read(response: Any, offset: int) -> int | None:
    """Bytes at the start of this answer that were read before: 0 for a range that starts
    where the last answer broke off, all of them for a server that sent the file again
    (200), None for a range that starts past them."""
    if not offset or response.status_code != 206:
        return offset
    header = response.headers.get("Content-Range", "")
    try:
        start = int(header.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None
    return offset - start if start <= offset else None


class _LineSplitter:
    """Lines as they arrive, without their `\\n` or `\\r\\n`; blank lines skipped. Fed
    piece by piece, so that a download resumed after a break goes on mid-line.

    `iter_lines` would do, but it loses the byte count, and its known bug yields a spurious
    empty line when a chunk ends between `\\r` and `\\n`.
    """

    def __init__(self, read: FileRead) -> None:
        self.read = read
        self.pending = b""
        self.first = True

    def feed(self, chunk: bytes) -> list[bytes]:
        self.read.bytes += len(chunk)
        self.pending += chunk
        *complete, self.pending = self.pending.split(b"\n")
        return [line for line in map(self._line, complete) if line]

    def finish(self) -> list[bytes]:
        last, self.pending = self._line(self.pending), b""  # no newline at the end of the file
        return [last] if last else []

    def _line(self, line: bytes) -> bytes:
        line = line.rstrip(b"\r")
        if not line.strip():
            return b""
        if self.first:
            _check_not_gateway_page(line)
            self.first = False
        return line


def _check_not_gateway_page(line: bytes) -> None:
    """A gateway that could not use its upstream's answer says so with a 200."""
    if line.startswith(b'{"html-message"'):
        start = line[:200].decode(errors="replace")
        raise InvalidPageError(f"the gateway could not use its upstream's answer: {start!r}")


# The per-line columns, in REQUEST_SCHEMA's order after account, batch_id, file_id, kind.
LINE_FIELDS = tuple(field.name for field in REQUEST_SCHEMA)[4:]


def parse_line(line: bytes) -> tuple | None:
    """The kept fields of one line, or None for a line that is not a request's result.

    Only ids, status, error code/type/message/param, model and token counts are kept;
    the bodies (users' content) are dropped here, line by line.
    """
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    custom_id = record.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return None
    response = _dict(record.get("response"))
    body = _dict(response.get("body"))
    body_error = _dict(body.get("error"))
    line_error = _dict(record.get("error"))
    error = body_error or line_error
    usage = _dict(body.get("usage"))
    input_details = _dict(usage.get("input_tokens_details") or usage.get("prompt_tokens_details"))
    output_details = _dict(
        usage.get("output_tokens_details") or usage.get("completion_tokens_details")
    )
    return (
        _text(record.get("id")),
        custom_id,
        _int(response.get("status_code")),
        _text(body_error.get("code")) or _text(line_error.get("code")),
        _text(error.get("type")),
        (_text(error.get("message")) or "")[:MESSAGE_CHARS] or None,
        _text(error.get("param")),
        _text(body.get("model")),
        _first_int(usage, "input_tokens", "prompt_tokens"),
        _int(input_details.get("cached_tokens")),
        _first_int(usage, "output_tokens", "completion_tokens"),
        _int(output_details.get("reasoning_tokens")),
        _int(usage.get("total_tokens")),
    )


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _first_int(usage: dict, *names: str) -> int | None:
    for name in names:
        value = _int(usage.get(name))
        if value is not None:
            return value
    return None


def requests_table(account: str, file: FileToFetch | None, rows: list[tuple]) -> pa.Table:
    """One Arrow table from parsed lines of one file, built column by column."""
    n = len(rows)
    constants = (account, *(file.batch_id, file.file_id, file.kind)) if file else (None,) * 4
    columns = [pa.array([value] * n, pa.string()) for value in constants]
    values = list(zip(*rows, strict=True)) if rows else [()] * len(LINE_FIELDS)
    for field, column in zip(REQUEST_SCHEMA.types[4:], values, strict=True):
        columns.append(pa.array(column, field))
    return pa.Table.from_arrays(columns, schema=REQUEST_SCHEMA)


def files_table(reads: list[FileRead], account: str, loaded_at: float) -> pa.Table:
    rows = [
        {
            "account": account,
            "file_id": read.file.file_id,
            "batch_id": read.file.batch_id,
            "kind": read.file.kind,
            "state": read.state,
            "lines": read.lines,
            "bad_lines": read.bad_lines,
            "bytes": read.bytes,
            "loaded_at": int(loaded_at * 1_000_000),
            "failure_reason": read.failure_reason,
            "first_failed_at": (
                int(read.first_failed_at * 1_000_000) if read.first_failed_at else None
            ),
        }
        for read in reads
    ]
    return pa.Table.from_pylist(rows, schema=FILE_SCHEMA)


# Files a run names on stderr when their download fails: an outage fails them all, and the
# ledger (`state = 'pending'`, `failure_reason`) lists every one.
WARNED_FAILURES = 5


class _Spool:
    """One file's rows, held until the file is complete: a file is loaded whole or not at
    all, even when its body broke off for good halfway. The first CHUNK_ROWS rows stay in
    memory, the rest go to a temporary Arrow file, so memory stays bounded on any file."""

    def __init__(self, account: str, file: FileToFetch) -> None:
        self.account = account
        self.file = file
        self.rows: list[tuple] = []
        self._disk: Any = None
        self._writer: Any = None

    def add(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= CHUNK_ROWS:
            table, self.rows = requests_table(self.account, self.file, self.rows), []
            if self._writer is None:
                self._disk = tempfile.TemporaryFile(prefix="batchlens-file-")  # noqa: SIM115
                self._writer = pa.ipc.new_stream(self._disk, REQUEST_SCHEMA)
            self._writer.write_table(table)

    def tables(self) -> Iterator[pa.Table]:
        if self._writer is not None:
            self._writer.close()
            self._disk.seek(0)
            for batch in pa.ipc.open_stream(self._disk):
                yield pa.Table.from_batches([batch], schema=REQUEST_SCHEMA)
        if self.rows:
            yield requests_table(self.account, self.file, self.rows)

    def close(self) -> None:
        self.rows = []
        if self._disk is not None:
            self._disk.close()  # a temporary file: gone once closed
            self._disk = self._writer = None


class RequestFiles:
    """The files one account's run fetches, and the tables they become.

    Fed the batches as the pages bring them (`note`), then asked for its tables once every
    page is in (`tables`), as often as it takes: each call downloads files until none is
    left or its limits are reached, and its tables (the files' rows and their ledger rows)
    go into the load package of that step. A file's rows come with its ledger row or not
    at all; a file whose download fails after its retries gets a `pending` ledger row,
    with the reason, and is fetched again by the next run.
    """

    def __init__(
        self,
        api: BatchesApi,
        account: str,
        kinds: Iterable[str],
        known: set[str] | None = None,
        stored: Iterable[FileToFetch] = (),
        workers: int = 1,
    ) -> None:
        self.account = account
        self.kinds = tuple(kinds)
        self.known = set(known or ())
        self.downloader = FileDownloader(api)
        self.workers = workers
        self.pending: dict[str, FileToFetch] = {}  # in the order they are fetched
        self.warned = 0  # failed files named on stderr so far
        self._lock = threading.Lock()  # `pending` is shared by the download workers
        for file in stored:
            self._add(file)

    def _add(self, file: FileToFetch) -> None:
        if file.file_id not in self.known and file.file_id not in self.pending:
            self.pending[file.file_id] = file

    def note(self, batches: Iterable[dict]) -> None:
        for file in terminal_files(batches, self.kinds):
            self._add(file)

    def tables(
        self,
        max_files: float = float("inf"),
        max_seconds: float = float("inf"),
        stop: threading.Event | None = None,
    ) -> Iterator[Any]:
        """Hinted Arrow tables: both tables first (empty), so they exist from the first run.

        Files download `workers` at a time, each worker taking the next file due: at an
        API's latency a first run over a long history fetches hundreds of files, and one
        after another they would take minutes. No file is started once `max_files` were
        started or `max_seconds` have passed; the files in progress are finished. With
        `stop` set, they are abandoned instead (not recorded: the next run fetches them).
        Chunks of at most CHUNK_ROWS rows come back through a short queue, so memory
        stays bounded whatever the files' sizes.
        """
        empty = requests_table(self.account, None, [])
        yield dlt.mark.with_hints(empty, REQUESTS_HINTS, create_table_variant=True)
        deadline = time.monotonic() + max_seconds
        started = 0

        def take() -> FileToFetch | None:
            nonlocal started
            with self._lock:
                if not self.pending or started >= max_files or time.monotonic() >= deadline:
                    return None
                if stop is not None and stop.is_set():
                    return None
                started += 1
                return self.pending.pop(next(iter(self.pending)))

        reads: list[FileRead] = []
        count = max(1, min(self.workers, len(self.pending), max_files))
        producers = [self._producer(take, stop) for _ in range(int(count))]
        for item in gather(producers, "batchlens-files") if self.pending else ():
            if isinstance(item, FileRead):
                reads.append(item)
            else:
                yield dlt.mark.with_table_name(item, REQUESTS_TABLE)
        ledger = files_table(reads, self.account, time.time())
        yield dlt.mark.with_hints(ledger, FILES_HINTS, create_table_variant=True)

    def _producer(
        self, take: Callable[[], FileToFetch | None], stop: threading.Event | None
    ) -> Callable[[Emit], None]:
        def produce(emit: Emit) -> None:
            while (file := take()) is not None:
                fetched = self._fetch(file, stop)
                if fetched is None:  # stopped: not attempted, as far as the ledger goes
                    with self._lock:
                        self.pending[file.file_id] = file
                    return
                read, spool = fetched
                try:
                    # a complete file is handed over whole, even once the run is stopping
                    for table in spool.tables() if read.state == "loaded" else ():
                        if not emit(table):
                            return
                    if not emit(read):
                        return
                finally:
                    spool.close()

        return produce

    def _fetch(
        self, file: FileToFetch, stop: threading.Event | None
    ) -> tuple[FileRead, _Spool] | None:
        """The file's ledger row and its rows; a failure after retries is a `pending` row."""
        spool = _Spool(self.account, file)
        read = FileRead(file)
        try:
            for item in self.downloader.read(file, stop):
                if isinstance(item, FileRead):
                    read = item
                else:
                    spool.add(item)
        except DownloadStopped:
            spool.close()
            return None
        except (ApiRefusedError, ApiRejectedRequestError, InvalidPageError, GatewayFilesError):
            spool.close()  # the key, the URL or the gateway: no other file would do better
            raise
        except (BatchesApiError, requests.RequestException) as exc:
            spool.close()
            reason = str(exc) if isinstance(exc, BatchesApiError) else _unreachable(exc)
            self.downloader._count(failed=1)
            with self._lock:
                self.warned += 1
                warned = self.warned
            if warned <= WARNED_FAILURES:
                log.warning("file %s (batch %s): %s", file.file_id, file.batch_id, reason)
            elif warned == WARNED_FAILURES + 1:
                log.warning(
                    "more files could not be downloaded; batch_files lists them all "
                    "(state 'pending', with the reason)"
                )
            failed = FileRead(file, "pending", failure_reason=reason)
            failed.first_failed_at = file.failed_since or time.time()
            return failed, spool
        return read, spool


def _unreachable(exc: BaseException) -> str:
    attempts = getattr(exc, "attempts", None)
    tried = f" ({attempts} attempts)" if attempts else ""
    return f"the download got no answer: {retries.cause(exc)}{tried}"
