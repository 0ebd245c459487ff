"""HTTP access to the Batch API: paging with guards, retrieval, and the errors they raise."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import dlt
import orjson
from dlt.common.configuration.specs import RuntimeConfiguration
from dlt.sources.helpers.requests import Client, Response
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from . import retries
from .settings import PAGE_LIMIT


class BatchesApiError(Exception):
    """The API answered, after retries, with something batchlens cannot use.

    `outcome` is the source contract's word for what a caller should do (see
    docs/development.md, "Adding a provider"): `failed` (try again later), `refused`
    (credentials or URL), `rejected` (the request or the gateway's configuration).
    """

    outcome = "failed"


class ApiRefusedError(BatchesApiError):
    """401/403/404: the credentials or the URL are wrong; retrying will not help."""

    outcome = "refused"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"the API refused the request (HTTP {status}): {message}")
        self.status = status


class ApiRejectedRequestError(BatchesApiError):
    """Another 4xx (400, 422, ...): the request or the gateway's configuration is wrong."""

    outcome = "rejected"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"the API rejected the request (HTTP {status}): {message}")
        self.status = status


class InvalidPageError(BatchesApiError):
    """A 200 whose body is not a usable list page, or a cursor that would loop forever."""


def api_message(response: Response) -> str:
    """The API's own words for an error, falling back to the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:300]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if "html-message" in body:
            return f"gateway html-message: {str(body['html-message'])[:300]}"
        if isinstance(body.get("message"), str):  # the Portkey gateway's own errors
            return body["message"]
    return json.dumps(body)[:300]


class BatchesApi:
    """A retrying session on `{base_url}/batches`.

    Retries (429 with Retry-After, 5xx, dropped connections, timeouts) come from dlt's
    request `Client`, configured by `[runtime] request_max_attempts`, `request_backoff_factor`,
    `request_timeout` and `request_max_retry_delay`. Status errors are not raised by the
    session: we turn them into errors that carry the API's message.

    The session is shared by the threads that retrieve or page concurrently (`parallel`):
    its connection pool holds `connections`, and a 429's Retry-After holds every thread
    back, not only the one that met it (`_CountingAdapter`).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        provider: str | None = None,
        headers: dict[str, str] | None = None,
        connections: int = 10,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = Client(raise_for_status=False).session
        self.session.headers.update(headers or {})
        if api_key:  # a Portkey config or virtual key may carry the provider's key instead
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        if provider:
            self.session.headers["x-portkey-provider"] = provider
        self._adapter = _CountingAdapter(connections)
        self.session.mount("http://", self._adapter)
        self.session.mount("https://", self._adapter)
        retries.watch(self.session)  # waits on stderr; attempts in the final error
        self._counts_lock = threading.Lock()
        self.list_requests = 0
        self.retrieve_requests = 0

    def _count(self, name: str) -> None:
        with self._counts_lock:  # `+=` is not atomic across threads
            setattr(self, name, getattr(self, name) + 1)

    @property
    def attempts(self) -> int:
        """Every attempt sent, retries and dropped connections included."""
        return self._adapter.sent

    def counts(self) -> tuple[int, int, int]:
        """(list requests, retrieve requests, attempts) so far: a step's are the difference."""
        with self._counts_lock:
            return self.list_requests, self.retrieve_requests, self.attempts

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Response:
        response = self.session.get(f"{self.base_url}{path}", params=params)
        status = response.status_code
        if status in (401, 403, 404):
            raise ApiRefusedError(status, api_message(response))
        if 400 <= status < 500 and status != 429:  # never retried: retrying will not help
            raise ApiRejectedRequestError(status, api_message(response))
        if status >= 400:
            attempts = getattr(response, "attempts", None)  # set by retries.watch
            raise BatchesApiError(
                f"GET {path} failed with HTTP {status} after retries: {api_message(response)}"
                + (f" ({attempts} attempts)" if attempts else "")
            )
        return response

    def pages(
        self,
        on_page: Callable[[int, int], None] | None = None,
        stop: Callable[[list[dict]], bool] | None = None,
        read_ahead: bool = True,
    ) -> Iterator[list[dict]]:
        """Each list page's batches, newest first, until `has_more` is false or `stop`.

        With `read_ahead`, the pages are fetched in a thread, so the next request is on the
        wire while the caller converts and writes this page. `stop` is asked in that thread
        before each next request, so reading ahead never costs a request more.
        """
        pages = self._pages(on_page, stop)
        return _read_ahead(pages) if read_ahead else pages

    def _pages(
        self,
        on_page: Callable[[int, int], None] | None,
        stop: Callable[[list[dict]], bool] | None,
    ) -> Iterator[list[dict]]:
        """Yields each list page's batches, newest first, until `has_more` is false or `stop`.

        Guards what the API does not: a repeated id or a cursor that does not advance,
        `has_more` with empty `data`, and a body that is not a list page all raise, so a
        run can never loop forever. A page without `has_more` is the last one: providers
        behind a gateway that ignore the cursor return everything at once.
        """
        seen: set[str] = set()
        after: str | None = None
        pages = 0
        while True:
            data, has_more, last_id = self.list_page(after)
            for batch in data:
                if batch["id"] in seen:
                    raise InvalidPageError(
                        f"the API repeated batch {batch['id']} in one run "
                        f"(page {pages + 1}, after={after}): its cursor does not advance"
                    )
                seen.add(batch["id"])
            pages += 1
            if on_page is not None:
                on_page(pages, len(seen))
            if data:
                yield data
            if not has_more or (stop is not None and data and stop(data)):
                return
            if not data:
                raise InvalidPageError(
                    f"the API said has_more with an empty page (page {pages}, after={after})"
                )
            # `last_id` is the id of the last object for OpenAI, and the page token for a
            # gateway that maps `after` onto one; the SDK's `data[-1].id` when it is absent.
            after = last_id or data[-1]["id"]

    def list_page(self, after: str | None = None) -> tuple[list[dict], bool, str | None]:
        """One list request: the page's batches, `has_more` and `last_id` (checked shapes)."""
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if after is not None:
            params["after"] = after
        self._count("list_requests")
        return parse_list_page(self._get("/batches", params))

    def retrieve(self, batch_id: str) -> dict | None:
        """One batch by id, or None when the API no longer knows it (404)."""
        self._count("retrieve_requests")
        try:
            response = self._get(f"/batches/{batch_id}")
        except ApiRefusedError as refused:
            if refused.status == 404:
                return None
            raise
        batch = parse_json(response)
        if not isinstance(batch, dict) or not isinstance(batch.get("id"), str):
            raise InvalidPageError(f"GET /batches/{batch_id} did not return a batch object")
        return batch


_END = object()


def _read_ahead(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Runs `items` in a thread, up to `depth` items ahead; its exceptions surface here."""
    ready: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    abandoned = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not abandoned.is_set():
            try:
                ready.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((None, exc))

    threading.Thread(target=produce, name="batchlens-pages", daemon=True).start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        abandoned.set()


class _CountingAdapter(HTTPAdapter):
    """Counts attempts below dlt's retry wrapper, where a dropped connection is still seen.

    Also the pool's gate: a 429's Retry-After (capped as dlt's retry caps it)
    holds back every attempt of every thread until it has passed. dlt's retry makes the
    thread that met the 429 wait that long anyway; without the gate the other threads would
    keep sending into the rate limit and each collect a 429 of its own.
    """

    def __init__(self, connections: int) -> None:
        super().__init__(pool_maxsize=connections)
        self._lock = threading.Lock()
        self.sent = 0
        self._resume_at = 0.0  # time.monotonic() before which no attempt is sent
        max_delay = dlt.config.get("runtime.request_max_retry_delay", float)
        self._max_delay = float(
            RuntimeConfiguration.request_max_retry_delay if max_delay is None else max_delay
        )

    def send(self, *args: Any, **kwargs: Any) -> Response:
        while (wait := self._resume_at - time.monotonic()) > 0:
            time.sleep(wait)
        with self._lock:
            self.sent += 1
        response = super().send(*args, **kwargs)
        if response.status_code == 429:
            self._pause(response.headers.get("Retry-After"))
        return response

    def _pause(self, header: str | None) -> None:
        try:
            seconds = Retry().parse_retry_after(header) if header else 0.0
        except InvalidHeader:  # dlt's retry then backs off exponentially, this thread only
            return
        if seconds > 0:
            with self._lock:
                resume_at = time.monotonic() + min(seconds, self._max_delay)
                self._resume_at = max(self._resume_at, resume_at)


def parse_json(response: Response) -> Any:
    try:
        return orjson.loads(response.content)  # 3x faster than json on a page of 100
    except orjson.JSONDecodeError:
        start = (response.text or "")[:120].replace("\n", " ")
        raise InvalidPageError(
            f"the API answered HTTP {response.status_code} with a body that is not JSON: {start!r}"
        ) from None


def parse_list_page(response: Response) -> tuple[list[dict], bool, str | None]:
    """Checks the body's shape, not only its status: gateways answer 200 with other bodies."""
    body = parse_json(response)
    if not isinstance(body, dict):
        raise InvalidPageError("the API answered with JSON that is not a list page")
    if "html-message" in body:
        raise InvalidPageError(
            f"the gateway could not use its upstream's answer: {str(body['html-message'])[:200]!r}"
        )
    data = body.get("data")
    if body.get("object", "list") != "list" or not isinstance(data, list):
        keys = ", ".join(sorted(body)[:8])
        raise InvalidPageError(f"the API answered with JSON that is not a list page (keys: {keys})")
    for batch in data:
        if (
            not isinstance(batch, dict)
            or not isinstance(batch.get("id"), str)
            or not isinstance(batch.get("created_at"), int | float)
        ):
            raise InvalidPageError("a list page holds an entry without a string id and created_at")
    last_id = body.get("last_id")
    return data, body.get("has_more") is True, last_id if isinstance(last_id, str) else None
