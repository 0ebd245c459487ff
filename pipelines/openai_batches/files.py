"""Batches' error and output files, request by request: which to fetch, streamed, parsed.

A terminal batch's files never change, so each is fetched once: the ledger table
`batch_files` (in the destination, committed with the rows) says which files are done,
and only terminal batches' files that it does not hold are downloaded. A file is read line
by line from the socket and every line is cut down to a few ids, codes and token counts at
once: bodies hold users' data, and an output file can be hundreds of MB.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import dlt
import orjson
import pyarrow as pa
import requests

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
    """The file ids the ledger holds, and the stored terminal batches' files it does not.

    The second list covers a database loaded before files were fetched, or with fewer kinds
    (`--requests errors`, then `all`): those batches are not in this run's pages.
    """
    kinds = tuple(kinds)
    if not kinds:
        return set(), []
    ledger = f"{dataset}.{FILES_TABLE}"
    try:
        rows = read(f"select file_id from {ledger} where account = $account", account=account)
        known = {str(file_id) for (file_id,) in rows}
        has_ledger = True
    except Exception:  # no ledger yet: a first run, or a database from before files
        known, has_ledger = set(), False
    statuses = ", ".join(f"'{status}'" for status in sorted(TERMINAL_STATUSES))
    pending: list[FileToFetch] = []
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
            pending.extend(FileToFetch(batch_id, kind, file_id) for batch_id, file_id in rows)
    except Exception:  # no batches table yet
        return known, []
    return known, pending


@dataclass
class FileRead:
    """What one download found: the ledger row of the file."""

    file: FileToFetch
    state: str = "loaded"  # "loaded" | "expired" | "missing"
    lines: int = 0
    bad_lines: int = 0
    bytes: int = 0


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

    def read(self, file: FileToFetch) -> Iterator[tuple | FileRead]:
        """The file's parsed lines (see `parse_line`), then its `FileRead` (ledger row) last.

        A 404 means the file is gone for good: `expired` when the Files API no longer
        knows it either (OpenAI deletes batch files after 30 days by default), `missing`
        when it still lists the file but serves no content.
        """
        read = FileRead(file)
        self._count(requests=1)
        response = self.api.session.get(
            f"{self.api.base_url}/files/{file.file_id}/content", stream=True
        )
        if response.status_code == 404:
            # Give the connection back before asking the Files API: a worker holding two
            # at once overflows the pool, which sizes one connection per worker.
            response.close()
            read.state = "expired" if self._gone(file.file_id) else "missing"
            yield read
            return
        with response:
            try:
                _check(response, f"GET /files/{file.file_id}/content")
            except BatchesApiError as exc:
                raise BatchesApiError(f"{exc}{self._gateway_hint(response)}") from None
            try:
                for line in _lines(response, read):
                    row = parse_line(line)
                    if row is None:
                        read.bad_lines += 1
                        continue
                    read.lines += 1
                    yield row
            except requests.RequestException as exc:  # not retried: rows are already out
                raise BatchesApiError(
                    f"the download of file {file.file_id} (batch {file.batch_id}) broke off "
                    f"after {read.bytes} bytes ({type(exc).__name__}); the next run fetches it"
                ) from None
        self._count(downloaded=1, rows=read.lines)
        if read.bad_lines:
            log.warning(
                "file %s (batch %s): %d line(s) skipped, not JSON or without custom_id",
                file.file_id,
                file.batch_id,
                read.bad_lines,
            )
        yield read

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

    def _count(self, requests: int = 0, downloaded: int = 0, rows: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.downloaded += downloaded
            self.rows += rows

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


def _lines(response: Any, read: FileRead) -> Iterator[bytes]:
    """Lines as they arrive, without their `\\n` or `\\r\\n`; blank lines skipped.

    `iter_lines` would do, but it loses the byte count, and its known bug yields a spurious
    empty line when a chunk ends between `\\r` and `\\n`.
    """
    pending = b""
    first = True
    for chunk in response.iter_content(chunk_size=READ_BYTES):
        read.bytes += len(chunk)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            line = line.rstrip(b"\r")
            if line.strip():
                if first:
                    _check_not_gateway_page(line)
                    first = False
                yield line
    pending = pending.rstrip(b"\r")
    if pending.strip():  # no newline at the end of the file
        if first:
            _check_not_gateway_page(pending)
        yield pending


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
        }
        for read in reads
    ]
    return pa.Table.from_pylist(rows, schema=FILE_SCHEMA)


class RequestFiles:
    """The files one account's run fetches, and the tables they become.

    Fed the batches as the pages bring them (`note`), then asked for its tables once every
    page is in (`tables`): the rows and the ledger go into the same load package as the
    batches, so a run that fails leaves all of them, and the ledger, as they were.
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
        self.pending: dict[str, FileToFetch] = {}
        for file in stored:
            self._add(file)

    def _add(self, file: FileToFetch) -> None:
        if file.file_id not in self.known and file.file_id not in self.pending:
            self.pending[file.file_id] = file

    def note(self, batches: Iterable[dict]) -> None:
        for file in terminal_files(batches, self.kinds):
            self._add(file)

    def tables(self) -> Iterator[Any]:
        """Hinted Arrow tables: both tables first (empty), so they exist from the first run.

        Files download `workers` at a time, each worker taking every `workers`-th file: at
        an API's latency a first run over a long history fetches hundreds of files, and one
        after another they would take minutes. Chunks of at most CHUNK_ROWS rows come back
        through a short queue, so memory stays bounded whatever the files' sizes.
        """
        empty = requests_table(self.account, None, [])
        yield dlt.mark.with_hints(empty, REQUESTS_HINTS, create_table_variant=True)
        files = list(self.pending.values())
        reads: list[FileRead] = []
        count = max(1, min(self.workers, len(files)))
        producers = [self._producer(files[k::count]) for k in range(count)]
        for item in gather(producers, "batchlens-files") if files else ():
            if isinstance(item, FileRead):
                reads.append(item)
            else:
                yield self._rows(*item)
        ledger = files_table(reads, self.account, time.time())
        yield dlt.mark.with_hints(ledger, FILES_HINTS, create_table_variant=True)

    def _producer(self, files: list[FileToFetch]) -> Callable[[Emit], None]:
        def produce(emit: Emit) -> None:
            for file in files:
                chunk: list[tuple] = []
                for item in self.downloader.read(file):
                    if isinstance(item, FileRead):
                        if (chunk and not emit((file, chunk))) or not emit(item):
                            return
                        continue
                    chunk.append(item)
                    if len(chunk) >= CHUNK_ROWS:
                        if not emit((file, chunk)):
                            return
                        chunk = []

        return produce

    def _rows(self, file: FileToFetch, rows: list[tuple]) -> Any:
        return dlt.mark.with_table_name(requests_table(self.account, file, rows), REQUESTS_TABLE)
