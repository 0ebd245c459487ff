"""A local HTTP stand-in for the OpenAI Batch API, with a simulated clock and fault injection.

It answers `GET /v1/batches` and `GET /v1/batches/{id}` as the real API does (ordering,
cursor, limits, auth and error shapes), and `GET /v1/files/{id}` and `/v1/files/{id}/content`
for the batches' output and error files (see `files`; a `Range: bytes=N-` header is
honoured unless `ranges` is off), so pipelines, tests and benchmarks run offline and
reproducibly. Pages are served from per-clock caches of pre-rendered JSON:
paging through 100,000 batches costs string joins, not rendering, so a benchmark measures
the client.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from batchlens.simulator import faults, shapes
from batchlens.simulator import files as batch_files
from batchlens.simulator.faults import Fault, FaultBook, error_body
from batchlens.simulator.history import (
    DEFAULT_NOW,
    FOREVER,
    BatchPlan,
    generate_history,
    next_change,
    plan_batch,
    render,
    sort_key,
)

DEFAULT_API_KEY = "sk-sim-batchlens-0000"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
LIST_PATH = "/v1/batches"
FILES_PATH = "/v1/files"
CONTROL_PREFIX = "/_sim/"

Entry = BatchPlan | dict[str, Any]  # a lifecycle plan, or a literal Batch object served verbatim
Request = tuple[str, str, dict[str, str], int]  # (method, path, query, status); 0 = dropped


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class _View:
    """What the API shows at one clock value; replaced whole, so handlers never lock."""

    clock: int
    ids: list[str]
    bodies: list[str]  # each batch's JSON, newest first
    index: dict[str, int]  # id -> position in ids/bodies


class _ApiError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, param: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


class Simulator:
    """The simulated Batch API. Use as a context manager, or call start() and stop().

    `history`: literal Batch objects (hand-made golden datasets) served as-is, newest first,
    with no lifecycle; otherwise `batches` plans are generated from `seed` around `now`.
    """

    def __init__(
        self,
        batches: int = 500,
        seed: int = 7,
        now: int = DEFAULT_NOW,
        api_key: str = DEFAULT_API_KEY,
        port: int = 0,
        history: Iterable[dict[str, Any]] | None = None,
        shape: str = "openai",
        file_padding: int = 0,
        latency: float = 0.0,
        ranges: bool = True,
    ) -> None:
        if shape not in shapes.SHAPES:
            raise ValueError(f"shape must be one of {shapes.SHAPES}")
        self.shape = shape
        self.file_padding = file_padding  # characters added to each output line's body
        self.latency = latency  # seconds each API answer waits, as a distant API's round trip
        self.ranges = ranges  # file contents honour `Range: bytes=N-`, as OpenAI's CDN does
        self.api_key = api_key
        self.seed = seed
        self._port = port
        self._clock = now
        self._lock = threading.RLock()
        self._rng = random.Random(f"batchlens-sim-additions-{seed}")
        self._faults = FaultBook()
        self._requests: list[Request] = []
        self._request_times: list[float] = []  # time.monotonic() of each recorded request
        self._arrival_times: list[float] = []  # and of its arrival, before the latency
        self._content_ranges: list[tuple[str, str | None]] = []  # (file id, Range header)
        self._requests_lock = threading.Lock()
        self._cache: dict[str, tuple[int, str]] = {}  # id -> (valid until clock, JSON)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        entries: list[Entry] = (
            [dict(batch) for batch in history]
            if history is not None
            else list(generate_history(batches, seed, now))
        )
        self._entries = self._sorted(entries)
        self._files: dict[str, batch_files.BatchFile] = {}
        self._file_bodies: dict[str, bytes] = {}  # content served instead of the rendered one
        self._index_files(self._entries)
        self._view = self._build_view()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Simulator:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.simulator = self
        self._server, self._port = server, server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    # --- simulated time and data ------------------------------------------------------------

    @property
    def clock(self) -> int:
        return self._clock

    def advance(self, seconds: int) -> int:
        """Move the clock forward; stages whose time is <= the new clock become visible."""
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._clock += int(seconds)
            self._view = self._build_view()
            return self._clock

    def add_batches(self, k: int, same_second: bool = True, **overrides: Any) -> list[str]:
        """Create `k` batches at the current clock and return their ids, all visible at once.

        When not `same_second`, they are created one per second from the clock on and the
        clock moves to the last one: a batch is never created in a past a client has read.
        `scenario=` picks the lifecycle (see history.SCENARIOS); other keywords override plan
        fields such as endpoint, model or metadata.
        """
        scenario = overrides.pop("scenario", None)
        unknown = set(overrides) - set(BatchPlan.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown batch fields: {sorted(unknown)}")
        with self._lock:
            plans = []
            for i in range(k):
                created_at = self._clock + (0 if same_second else i)
                plan = plan_batch(self._rng, created_at, scenario)
                if overrides:
                    plan = replace(plan, **overrides)
                plans.append(plan)
            self._clock = max(self._clock, plans[-1].created_at) if plans else self._clock
            self._entries = self._sorted([*self._entries, *plans])
            self._index_files(plans)
            self._view = self._build_view()
        return [plan.id for plan in plans]

    def delete_batches(self, ids: Iterable[str]) -> int:
        """Remove batches from the API, as a deletion or retention would; returns how many."""
        doomed = set(ids)
        with self._lock:
            kept = [entry for entry in self._entries if _id(entry) not in doomed]
            removed = len(self._entries) - len(kept)
            self._entries = kept
            self._view = self._build_view()
        return removed

    def visible(self) -> list[dict[str, Any]]:
        """Every batch as the API shows it now, newest first: the truth a loaded table matches."""
        return [json.loads(body) for body in self._view.bodies]

    def _index_files(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            if isinstance(entry, BatchPlan):
                self._files.update((f.file_id, f) for f in batch_files.files_of(entry))

    def file_lines(self, file_id: str) -> list[dict[str, Any]]:
        """The parsed lines of a file as served now (the truth a loaded table matches)."""
        file = self._served_file(file_id)
        if file_id in self._file_bodies:
            raise ValueError(f"file {file_id} was replaced: its lines are the test's own")
        return [json.loads(line) for line in batch_files.lines(file, self.file_padding)]

    def replace_file(self, file_id: str, body: bytes) -> None:
        """Serve `body` as a file's content from now on (odd line endings, broken lines)."""
        self._served_file(file_id)
        self._file_bodies[file_id] = body

    def _served_file(self, file_id: str) -> batch_files.BatchFile:
        file = self._files.get(file_id)
        if file is None or not file.served_at(self._clock):
            raise _ApiError(404, f"No such File object: {file_id}", param="id")
        return file

    def _file(self, path: str) -> bytes | Iterator[bytes]:
        """A file's metadata (JSON), or its content as an iterator of pieces."""
        parts = path[len(FILES_PATH) + 1 :].split("/")
        file = self._served_file(parts[0])
        replaced = self._file_bodies.get(file.file_id)
        if len(parts) == 2:
            return (
                iter([replaced])
                if replaced is not None
                else batch_files.chunks(file, self.file_padding)
            )
        size = len(replaced) if replaced is not None else len(batch_files.content(file))
        return _dumps(file.metadata(size)).encode()

    @staticmethod
    def _sorted(entries: list[Entry]) -> list[Entry]:
        return sorted(
            entries, key=lambda entry: sort_key(_id(entry), _created(entry)), reverse=True
        )

    def _build_view(self) -> _View:
        """Re-render only what changed since the last clock; terminal batches are cached forever."""
        clock, cache = self._clock, self._cache
        ids: list[str] = []
        bodies: list[str] = []
        for entry in self._entries:
            if isinstance(entry, BatchPlan):
                if entry.created_at > clock:
                    continue
                cached = cache.get(entry.id)
                if cached is None or cached[0] <= clock:
                    cached = (next_change(entry, clock), _dumps(render(entry, clock)))
                    cache[entry.id] = cached
                batch_id, body = entry.id, cached[1]
            else:
                batch_id = entry["id"]
                cached = cache.get(batch_id)
                if cached is None:
                    cached = cache[batch_id] = (FOREVER, _dumps(entry))
                body = cached[1]
            ids.append(batch_id)
            bodies.append(body)
        return _View(clock, ids, bodies, {batch_id: i for i, batch_id in enumerate(ids)})

    # --- faults and accounting --------------------------------------------------------------

    def inject(
        self,
        kind: str,
        *,
        every: int | None = None,
        times: int | None = None,
        on: str = "any",
        retry_after: str = "1",
        delay: float = 5.0,
        match: str | None = None,
    ) -> None:
        """Fault matching requests ("list", "retrieve", "file", "content" or "any"; with
        `match`, only those whose path or query holds it); see faults.KINDS."""
        fault = Fault(kind, every, times, on, match, str(retry_after), float(delay))
        self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def faults_injected(self) -> int:
        return self._faults.injected

    @property
    def requests(self) -> list[Request]:
        with self._requests_lock:
            return list(self._requests)

    @property
    def request_times(self) -> list[float]:
        """When each of `requests` was answered (time.monotonic()), in the same order."""
        with self._requests_lock:
            return list(self._request_times)

    @property
    def arrival_times(self) -> list[float]:
        """When each of `requests` arrived (time.monotonic()), before the latency waited."""
        with self._requests_lock:
            return list(self._arrival_times)

    def reset_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()
            self._request_times.clear()
            self._arrival_times.clear()
            self._content_ranges.clear()

    def content_ranges(self, file_id: str) -> list[str | None]:
        """The `Range` header of each download of one file's content (None: the whole file)."""
        with self._requests_lock:
            return [sent for file, sent in self._content_ranges if file == file_id]

    @property
    def list_requests(self) -> int:
        return sum(1 for _, path, _, _ in self.requests if path == LIST_PATH)

    @property
    def retrieve_requests(self) -> int:
        return sum(1 for _, path, _, _ in self.requests if path.startswith(LIST_PATH + "/"))

    def content_requests(self, file_id: str | None = None) -> int:
        """Downloads of file contents (all files, or one), answered or not."""
        return sum(
            1
            for _, path, _, _ in self.requests
            if path.startswith(FILES_PATH + "/")
            and path.endswith("/content")
            and (file_id is None or path == f"{FILES_PATH}/{file_id}/content")
        )

    def _record(
        self, method: str, path: str, query: dict[str, str], status: int, arrived: float
    ) -> None:
        with self._requests_lock:
            self._requests.append((method, path, query, status))
            self._request_times.append(time.monotonic())
            self._arrival_times.append(arrived)

    # --- the API ----------------------------------------------------------------------------

    def _list_page(self, query: dict[str, str], fault: Fault | None) -> bytes:
        if self.shape in ("bedrock", "cohere"):
            return self._provider_page(query, everything=True)
        if self.shape == "vertex":
            return self._provider_page(query, everything=False)
        view = self._view
        limit = _parse_limit(query.get("limit"))
        start = 0
        after = query.get("after")
        if after and (fault is None or fault.kind != "stuck_cursor"):
            position = view.index.get(after)
            if position is None:
                raise _ApiError(400, f"No such batch: {after}", param="after")
            start = position + 1
        end = min(start + limit, len(view.ids))
        has_more = end < len(view.ids)
        if fault is not None and fault.kind == "stuck_cursor":
            has_more = True
        if fault is not None and fault.kind == "empty_more":
            start = end = 0
            has_more = True
        bodies = view.bodies[start:end]
        if fault is not None and fault.kind in faults.BODY_FAULTS:
            alter = faults.BODY_FAULTS[fault.kind]
            bodies = [_dumps(alter(json.loads(body))) for body in bodies]
        first_id = _dumps(view.ids[start]) if end > start else "null"
        last_id = _dumps(view.ids[end - 1]) if end > start else "null"
        text = (
            '{"object":"list","data":[' + ",".join(bodies) + '],"first_id":' + first_id
            + ',"last_id":' + last_id + ',"has_more":' + ("true" if has_more else "false") + "}"
        )  # fmt: skip
        return text.encode()

    def _provider_page(self, query: dict[str, str], everything: bool) -> bytes:
        """Bedrock/Cohere: one page of everything, no has_more. Vertex: page tokens."""
        view = self._view
        start, end = 0, len(view.ids)
        if not everything:
            token = query.get("after")
            if token:
                position = shapes.position_of(token)
                if position is None or position > len(view.ids):
                    raise _ApiError(400, f"Invalid page token: {token}", param="after")
                start = position
            end = min(start + _parse_limit(query.get("limit")), len(view.ids))
        data = [shapes.as_provider(self.shape, json.loads(b)) for b in view.bodies[start:end]]
        body: dict[str, Any] = {"object": "list", "data": data}
        if not everything:
            has_more = end < len(view.ids)
            body["first_id"] = data[0]["id"] if data else None
            body["last_id"] = shapes.page_token(end) if has_more else None
            body["has_more"] = has_more
        return _dumps(body).encode()

    def _retrieve(self, batch_id: str, fault: Fault | None) -> bytes:
        view = self._view
        position = view.index.get(batch_id)
        if position is None:
            raise _ApiError(404, f"No batch found with id '{batch_id}'.")
        body = view.bodies[position]
        if self.shape != "openai":
            body = _dumps(shapes.as_provider(self.shape, json.loads(body)))
        if fault is not None and fault.kind in faults.BODY_FAULTS:
            body = _dumps(faults.BODY_FAULTS[fault.kind](json.loads(body)))
        return body.encode()

    def _control(self, method: str, path: str, query: dict[str, str], payload: bytes) -> Any:
        """The /_sim/ endpoints: drive an out-of-process simulator like the Python object."""
        action = path[len(CONTROL_PREFIX) :]
        try:
            if (method, action) == ("POST", "advance"):
                return {"clock": self.advance(int(query.get("seconds", "0")))}
            if (method, action) == ("POST", "add"):
                same_second = query.get("same_second", "1") not in ("0", "false", "no")
                overrides = {key: query[key] for key in ("scenario",) if key in query}
                ids = self.add_batches(int(query.get("k", "1")), same_second, **overrides)
                return {"ids": ids, "clock": self._clock}
            if (method, action) == ("POST", "delete"):
                return {"deleted": self.delete_batches(query.get("ids", "").split(","))}
            if (method, action) == ("POST", "latency"):
                self.latency = float(query.get("seconds", "0"))
                return {"latency": self.latency}
            if (method, action) == ("POST", "ranges"):
                self.ranges = query.get("on", "1") not in ("0", "false", "no")
                return {"ranges": self.ranges}
            if (method, action) == ("POST", "inject"):
                self.inject(**json.loads(payload or b"{}"))
                return {"ok": True}
            if (method, action) == ("POST", "clear"):
                self.clear_faults()
                return {"ok": True}
            if (method, action) == ("POST", "reset_requests"):
                self.reset_requests()
                return {"ok": True}
            if (method, action) == ("GET", "history"):
                return self.visible()
            if (method, action) == ("GET", "requests"):
                return [
                    {"method": m, "path": p, "query": q, "status": s}
                    for m, p, q, s in self.requests
                ]
            if (method, action) == ("GET", "state"):
                return {
                    "clock": self._clock,
                    "batches": len(self._view.ids),
                    "faults_injected": self.faults_injected,
                }
        except (TypeError, ValueError) as error:
            raise _ApiError(400, str(error)) from error
        raise _ApiError(404, f"Invalid URL ({method} {path})")


def _is_file_path(path: str) -> bool:
    """`/v1/files/{id}` or `/v1/files/{id}/content`."""
    parts = path[len(FILES_PATH) + 1 :].split("/") if path.startswith(FILES_PATH + "/") else []
    return bool(parts) and bool(parts[0]) and (len(parts) == 1 or parts[1:] == ["content"])


def _range_start(header: str | None) -> int | None:
    """N of `Range: bytes=N-`, the one form a resuming download sends; None otherwise."""
    if not header or not header.startswith("bytes=") or not header.endswith("-"):
        return None
    start = header[len("bytes=") : -1]
    return int(start) if start.isdigit() else None


def _id(entry: Entry) -> str:
    return entry.id if isinstance(entry, BatchPlan) else str(entry["id"])


def _created(entry: Entry) -> int:
    return entry.created_at if isinstance(entry, BatchPlan) else int(entry.get("created_at") or 0)


def _parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        message = f"Invalid 'limit': expected an integer, but got '{raw}' instead."
        raise _ApiError(400, message, "invalid_type", "limit") from None
    if limit < 1:
        message = (
            "Invalid 'limit': integer below minimum value. "
            f"Expected a value >= 1, but got {limit} instead."
        )
        raise _ApiError(400, message, "integer_below_min_value", "limit")
    if limit > MAX_LIMIT:
        message = (
            "Invalid 'limit': integer above maximum value. "
            f"Expected a value <= {MAX_LIMIT}, but got {limit} instead."
        )
        raise _ApiError(400, message, "integer_above_max_value", "limit")
    return limit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # benchmarks open many connections at once
    simulator: Simulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out and hang up are part of the scenario, not server errors."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse one connection for all pages
    server: _Server
    timeout = 120  # an idle keep-alive connection's thread ends eventually
    _pending: tuple[str, str, dict[str, str], float] | None = None  # the request to record

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: one log line per page would cost more than serving the page."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        sim = self.server.simulator
        parts = urlsplit(self.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        if path.startswith(CONTROL_PREFIX):
            try:
                body = _dumps(sim._control(method, path, query, payload)).encode()
                self._send(200, body)
            except _ApiError as error:
                self._send_error(error)
            return
        self._pending = (method, path, query, time.monotonic())
        self._serve_api(sim, method, path, query)

    def _serve_api(self, sim: Simulator, method: str, path: str, query: dict[str, str]) -> int:
        """Answer one API request; returns the status sent (0 when the socket was dropped)."""
        if self.headers.get("Authorization") != f"Bearer {sim.api_key}":
            # Never echo the key back, not even a prefix of it.
            body = error_body(
                "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
            return self._send(401, body)
        if method == "GET" and path == LIST_PATH:
            target = "list"
        elif method == "GET" and path.startswith(LIST_PATH + "/") and path.count("/") == 3:
            target = "retrieve"
        elif method == "GET" and _is_file_path(path):
            target = "content" if path.endswith("/content") else "file"
        else:
            return self._send_error(_ApiError(404, f"Invalid URL ({method} {path})"))
        if sim.latency > 0:
            time.sleep(sim.latency)  # a round trip: each handler thread waits on its own
        fault = sim._faults.draw(target, f"{method} {path} {sorted(query.items())}")
        if fault is not None:
            status = self._early_fault(fault)
            if status is not None:
                return status
        broken = fault.kind if fault is not None and fault.kind in faults.MID_BODY else None
        try:
            if target == "list":
                body = sim._list_page(query, fault)
            elif target in ("file", "content"):
                answer = sim._file(path)
                if not isinstance(answer, bytes):
                    return self._send_content(sim, path, answer, fault)
                body = answer
            else:
                body = sim._retrieve(path.rsplit("/", 1)[1], fault)
        except _ApiError as error:
            return self._send_error(error, broken)
        if fault is not None and fault.kind == "malformed":
            body = faults.truncate(body)
        return self._send(200, body, broken=broken)

    def _send_content(
        self, sim: Simulator, path: str, pieces: Iterator[bytes], fault: Fault | None
    ) -> int:
        """A file's content: from the byte a `Range: bytes=N-` asks for (206), or whole."""
        file_id = path[len(FILES_PATH) + 1 :].split("/")[0]
        asked = self.headers.get("Range")
        with sim._requests_lock:
            sim._content_ranges.append((file_id, asked))
        kind = fault.kind if fault is not None else None
        start = _range_start(asked) if sim.ranges else None
        if start is None and kind not in faults.MID_BODY:
            return self._send_stream(pieces, cut=kind == "malformed")
        content = b"".join(pieces)
        status, headers = 200, {}
        if start is not None:
            if start >= len(content):
                return self._send(416, b"", headers={"Content-Range": f"bytes */{len(content)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
            content = content[start:]
        # pieces a client reads one by one, so that a break halfway leaves it half the file
        size = max(1, min(64 * 1024, len(content) // 8))
        parts = [content[i : i + size] for i in range(0, len(content), size)]
        if kind in faults.MID_BODY:
            return self._send_stream(
                iter(parts[: len(parts) // 2]),
                status=status,
                headers=headers,
                broken=kind,
            )
        return self._send_stream(
            iter(parts), cut=kind == "malformed", status=status, headers=headers
        )

    def _send_stream(
        self,
        pieces: Iterator[bytes],
        cut: bool = False,
        status: int = 200,
        headers: dict[str, str] | None = None,
        broken: str | None = None,
    ) -> int:
        """A file's content, chunked as it is written; `cut`: the download breaks off midway
        (the socket closes after the first piece, without the final chunk); `broken` ("cut",
        "reset"): it breaks off, closed or reset, once `pieces` are sent."""
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            "Content-Type: application/octet-stream",
            "Transfer-Encoding: chunked",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._note(status)
        try:
            self.wfile.write(head)
            for piece in pieces:
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                if cut:
                    break
            if cut or broken:
                self.wfile.flush()
                self._hang_up(reset=broken == "reset")
                return status
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client hung up (a killed run)
            self.close_connection = True
        return status

    def _hang_up(self, reset: bool = False) -> None:
        """Ends the connection mid-answer: closed (FIN), or reset (RST) with `reset`."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            if reset:  # a zero linger time makes the close a reset
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)

    def _early_fault(self, fault: Fault) -> int | None:
        """Faults that replace the answer; None lets the request go on (maybe altered)."""
        kind = fault.kind
        if kind in ("429", "500", "502", "503"):
            status, body, content_type = faults.status_fault(kind)
            headers = {"Retry-After": fault.retry_after} if kind == "429" else {}
            return self._send(status, body, content_type, headers)
        if kind == "drop":
            self._note(0)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return 0
        if kind == "html":
            return self._send(200, faults.html_message())
        if kind == "timeout":
            time.sleep(fault.delay)
        return None

    def _note(self, status: int) -> None:
        """Record an API request before answering, so a client that has its answer sees it."""
        if self._pending is not None:
            method, path, query, arrived = self._pending
            self.server.simulator._record(method, path, query, status, arrived)
            self._pending = None

    def _send_error(self, error: _ApiError, broken: str | None = None) -> int:
        body = error_body(error.message, "invalid_request_error", error.code, error.param)
        return self._send(error.status, body, broken=broken)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        broken: str | None = None,
    ) -> int:
        """Write status line, headers and body in one go (cheaper than send_response & co).

        `broken` ("cut", "reset"): only half the body goes out, then the connection breaks.
        """
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._note(status)
        try:
            if broken is not None:
                self.wfile.write(head + body[: len(body) // 2])
                self.wfile.flush()
                self._hang_up(reset=broken == "reset")
                return status
            self.wfile.write(head + body)
        except OSError:  # the client gave up (e.g. its timeout fired during a "timeout" fault)
            self.close_connection = True
        return status


def serve_forever(
    port: int = 8000,
    batches: int = 500,
    seed: int = 7,
    api_key: str = DEFAULT_API_KEY,
    now: int = DEFAULT_NOW,
) -> None:
    """Run a simulator in the foreground until SIGINT or SIGTERM: the CLI's entry point."""
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
    with Simulator(batches=batches, seed=seed, api_key=api_key, port=port, now=now) as sim:
        print(f"batchlens simulator at {sim.url} (api key: {sim.api_key})", flush=True)
        while not stop.wait(0.5):
            pass
