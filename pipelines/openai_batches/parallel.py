"""Requests in flight together: open batches retrieved by a pool, the list read in segments.

At a real API's latency (hundreds of milliseconds a request) a run's wall time is the
number of requests in a row times the round trip, not our CPU. Both helpers keep the
request count of their sequential counterparts and share the API's session, so dlt's
retries and the pool-wide Retry-After gate (`api_client._CountingAdapter`) apply to every
thread alike.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

from .api_client import ApiRefusedError, ApiRejectedRequestError, BatchesApi, InvalidPageError
from .incremental import Mark, Part, PartPage
from .tables import to_seconds

Emit = Callable[[Any], bool]  # hands one item to the consumer; False once it has gone


def retrieve_all(
    api: BatchesApi, batch_ids: Sequence[str], workers: int
) -> Iterator[tuple[str, dict | None]]:
    """(id, batch or None when the API forgot it) for each id, in order, `workers` at a time.

    At most twice `workers` requests are queued ahead of the consumer, so a failure stops
    the pool after the requests already in flight: never more requests than the sequential
    loop would have sent before the same failure plus the width of the pool.
    """
    if workers <= 1 or len(batch_ids) <= 1:
        for batch_id in batch_ids:
            yield batch_id, api.retrieve(batch_id)
        return
    pool = ThreadPoolExecutor(min(workers, len(batch_ids)), "batchlens-retrieve")
    pending: deque[tuple[str, Future[dict | None]]] = deque()
    ids = iter(batch_ids)
    try:
        for batch_id in ids:
            pending.append((batch_id, pool.submit(api.retrieve, batch_id)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            batch_id, future = pending.popleft()
            result = future.result()  # raises the worker's error here, in the run's thread
            following = next(ids, None)
            if following is not None:
                pending.append((following, pool.submit(api.retrieve, following)))
            yield batch_id, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


PAGE = 100  # batches a list page holds (`limit`)


class PagePlan(NamedTuple):
    """Where an incremental run's segments start and end (`incremental_segments`)."""

    starts: list[tuple[str, int]]
    end: tuple[str, int] | None = None  # the last planned batch; None: the bottom
    # open batches created before this second are below every page the run reads: they
    # are retrieved while the pages are read
    retrieve_below: int | None = None


def incremental_segments(known: Sequence[tuple[str, int, bool]], segments: int) -> PagePlan:
    """Where an incremental run's pages start and end when read in segments at once.

    `known`: (id, created_at, open) of loaded batches, newest first, down to the first page
    of them holding fewer than two open batches (or all of them). One pass reads the top
    page of the known history, then each next page while it likely refreshes two or more
    open batches (`AccountProgress.stop_rule`); here the stored statuses say exactly which
    pages those are. The pass's known pages are split into at most `segments` parts of two
    pages or more (a boundary may cost one page more; each page saves two retrieves). The
    starts feed `segmented_pages`, and the end is the last batch of the last page. An empty
    plan means one pass, with its own stop rule.
    """
    pages = 1
    while len(known) > pages * PAGE:
        page = known[pages * PAGE : (pages + 1) * PAGE]
        if sum(1 for _, _, is_open in page if is_open) < 2:
            break
        pages += 1
    segments = min(segments, pages // 2)
    if segments < 2:
        return PagePlan([])
    starts = [known[pages * PAGE * i // segments][:2] for i in range(1, segments)]
    if len(known) <= pages * PAGE:
        return PagePlan(starts)  # the last segment reads to the bottom
    # The last page read ends within a page past the end: below that, nothing is read.
    below = known[(pages + 1) * PAGE - 1][1] if len(known) >= (pages + 1) * PAGE else None
    return PagePlan(starts, known[pages * PAGE - 1][:2], below)


def alongside(
    pages: Iterator[list[dict]], retrieved: Iterator[tuple[str, dict | None]]
) -> Iterator[list[dict] | tuple[str, dict | None]]:
    """The pages and the retrieves' results as they come, both in flight together."""

    def producer(items: Iterator[Any]) -> Callable[[Emit], None]:
        def produce(emit: Emit) -> None:
            for item in items:
                if not emit(item):
                    return

        return produce

    yield from gather([producer(pages), producer(retrieved)], name="batchlens-alongside")


def segmented_pages(
    api: BatchesApi,
    starts: Sequence[tuple[str, int]],
    on_page: Callable[[int, int], None] | None = None,
    end: tuple[str, int] | None = None,
) -> Iterator[list[dict]]:
    """Every batch the list shows, read as `len(starts) + 1` segments at once; deduplicated.

    `starts` are (id, created_at) of batches already loaded, newest first. Segment 0 reads
    from the top, segment i from after `starts[i - 1]`; each reads until its page holds the
    next live segment's start batch or anything created before it (the batches below are
    that segment's). A segment whose start the API rejects (deleted, a cursor it does not
    understand), answers with nothing, or ignores (the page holds the start batch itself)
    is dead: the segment above it reads on through its part. So the union is what one pass
    from the top reads, whatever was created or deleted since `starts` were loaded. With
    `end` (an incremental run), the last live segment stops at it in the same way, instead
    of reading to the bottom of the list.
    """
    marks: list[Mark | None] = [None, *starts, end]
    parts = [Part(marks[i], marks[i + 1]) for i in range(len(marks) - 1)]
    loaded = 0
    for pages, page in enumerate(read_parts(api, parts, dead_when_empty=True), start=1):
        loaded += len(page.batches)
        if on_page is not None:
            on_page(pages, loaded)
        if page.batches:
            yield page.batches


def read_parts(
    api: BatchesApi, parts: Sequence[Part], dead_when_empty: bool = False
) -> Iterator[PartPage]:
    """The pages of every part of the list, all parts read at once; each batch once.

    A part reads from after its `after` until its page holds its `stop` batch or anything
    created before it (the bottom of the list when `stop` is None). A part whose `after`
    the API rejects (deleted, a cursor it does not understand) or ignores (the page holds
    that batch itself) is dead: the part above it reads on through its stretch, and the
    topmost part, with none above, reads from the top instead. A part that finds nothing
    after its `after` is done (the list ends there), or dead with `dead_when_empty` (a
    segment start, whose stretch the part above then reads). The pages say where each part
    goes on from (`PartPage`), so that a walk read in steps can stop after any page.
    """
    live: list[bool | None] = [None] * len(parts)
    resolved = [threading.Event() for _ in parts]

    def through_of(index: int) -> int:
        """The last part `index` reads for: itself, and the dead parts right below it."""
        last = index
        for following in range(index + 1, len(parts)):
            resolved[following].wait()
            if live[following]:
                break
            last = following
        return last

    def first_page(index: int) -> tuple[list[dict], bool, str | None, bool]:
        """The part's first page, whether the part is live, and whether it reads from the top."""
        after = parts[index].after
        if after is None:
            return (*api.list_page(None), True)
        try:
            data, has_more, last_id = api.list_page(after[0])
        except (ApiRejectedRequestError, ApiRefusedError) as exc:
            if isinstance(exc, ApiRefusedError) and exc.status != 404:
                raise
            data, has_more, last_id = [], False, None
            if index == 0:  # no part above to read for it: from the top
                return (*api.list_page(None), True)
            return data, has_more, last_id, False
        ignored = any(batch["id"] == after[0] for batch in data)
        if ignored and index == 0:
            return (*api.list_page(None), True)
        if ignored or (not data and dead_when_empty and index > 0):
            return data, has_more, last_id, False
        return data, has_more, last_id, True

    def read(index: int, emit: Emit) -> None:
        try:
            data, has_more, last_id, live[index] = first_page(index)
        finally:
            resolved[index].set()  # whatever happened: nobody waits on a part forever
        if not live[index]:
            return
        through = through_of(index)
        stop = parts[through].stop
        after = parts[index].after
        seen: set[str] = set()
        while True:
            where = after[0] if after else None
            if not data and has_more:
                raise InvalidPageError(f"the API said has_more with an empty page (after={where})")
            for batch in data:
                if batch["id"] in seen:
                    raise InvalidPageError(
                        f"the API repeated batch {batch['id']} in one read (after={where}): "
                        "its cursor does not advance"
                    )
                seen.add(batch["id"])
            done = not has_more or bool(stop and _reached(data, stop))
            # where the part goes on from: the cursor the next request sends (a page token,
            # for a provider that has them), with the page's oldest second
            last = (
                (last_id or data[-1]["id"], to_seconds(data[-1]["created_at"]) or 0)
                if data
                else None
            )
            if not emit((index, data, last, through, done)) or done:
                return
            after = last
            data, has_more, last_id = api.list_page(after[0])

    def workers() -> list[Callable[[Emit], None]]:
        return [lambda emit, i=i: read(i, emit) for i in range(len(parts))]

    loaded: set[str] = set()
    for index, data, last, through, done in gather(workers(), name="batchlens-segment"):
        fresh = [batch for batch in data if batch["id"] not in loaded]
        loaded.update(batch["id"] for batch in fresh)
        yield PartPage(index, fresh, last, through, done)


def _reached(page: list[dict], stop: tuple[str, int]) -> bool:
    stop_id, stop_created = stop
    return any(
        batch["id"] == stop_id or (to_seconds(batch["created_at"]) or 0) < stop_created
        for batch in page
    )


_DONE = object()


def gather(producers: list[Callable[[Emit], None]], name: str, depth: int = 4) -> Iterator[Any]:
    """Runs each producer in its own thread; yields what they emit, as it comes.

    The first error of any producer is raised here and the others are told to stop (their
    `emit` answers False), as when the consumer stops early. Either way this returns only
    once every producer has stopped: a failed run must not leave threads sending requests
    behind it in a process that lives on (a notebook, a scheduler). Only Ctrl-C does not
    wait for the requests in flight; the process is ending.
    """
    ready: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    abandoned = threading.Event()

    def emit(item: Any) -> bool:
        while not abandoned.is_set():
            try:
                ready.put((item, None), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(producer: Callable[[Emit], None]) -> None:
        try:
            producer(emit)
            emit(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            while not abandoned.is_set():
                try:
                    ready.put((None, exc), timeout=0.1)
                    return
                except queue.Full:
                    continue

    threads = [
        threading.Thread(target=run, args=(p,), name=f"{name}-{i}", daemon=True)
        for i, p in enumerate(producers)
    ]
    for thread in threads:
        thread.start()
    running = len(threads)
    interrupted = False
    try:
        while running:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _DONE:
                running -= 1
            else:
                yield item
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        abandoned.set()
        for thread in threads if not interrupted else ():
            thread.join()  # each stops at its next emit, after the request it has in flight


class Started:
    """`items` produced in a thread from now on, up to `depth` ahead of the consumer.

    For requests that can go out before the consumer is ready (see `EarlyPages`). Iterate
    it once; its errors are raised there. `close` stops the producer after the request it
    has in flight and, with `wait`, returns once it has stopped.
    """

    def __init__(self, items: Iterator[Any], depth: int, name: str) -> None:
        self._ready: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
        self._abandoned = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(items,), name=name, daemon=True)
        self._thread.start()

    def _put(self, entry: tuple[Any, BaseException | None]) -> bool:
        while not self._abandoned.is_set():
            try:
                self._ready.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, items: Iterator[Any]) -> None:
        try:
            for item in items:
                if not self._put((item, None)):
                    return
            self._put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((None, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's own threads stop too (`gather`)

    def __iter__(self) -> Iterator[Any]:
        interrupted = False
        try:
            while True:
                item, error = self._ready.get()
                if error is not None:
                    raise error
                if item is _DONE:
                    return
                yield item
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            self.close(wait=not interrupted)

    def close(self, wait: bool = True) -> None:
        self._abandoned.set()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()


# Items read before the resource asks: some 0.6 s of a run's setup (dlt's, the views'
# check) at 8 segments or retrieves at once of 100 ms each; a few MB at most
EARLY_DEPTH = 64


class EarlyRequests:
    """A run's first requests, sent while dlt and the views' check are still setting up.

    The source starts them when it is created, from what the destination says (the stored
    batches), before dlt has restored the resource state; the resource takes each stream
    only if, knowing the state, it would send the same requests (`take`), and otherwise
    sends its own. The run closes it whatever happens, so no thread outlives a run that
    failed before reading.
    """

    def __init__(self) -> None:
        self._streams: dict[str, tuple[Any, Started]] = {}
        self._taken: set[str] = set()

    def start(self, stream: str, key: Any, items: Iterator[Any], depth: int = EARLY_DEPTH) -> None:
        """`key`: which requests these are, as the resource will describe what it wants;
        `depth`: how many items may be read ahead of it."""
        self._streams[stream] = (key, Started(items, depth, f"batchlens-early-{stream}"))

    def take(self, stream: str, key: Any) -> Started | None:
        """The stream started, if it is the one `key` describes; each only once."""
        if stream not in self._streams or stream in self._taken:
            return None
        self._taken.add(stream)
        started_key, items = self._streams[stream]
        if started_key != key:
            items.close()  # sent for a state the run turned out not to have
            return None
        return items

    def close(self, wait: bool = True) -> None:
        """Stops every stream, taken or not (a failed load may never finish taking one)."""
        for _, items in self._streams.values():
            items.close(wait)
