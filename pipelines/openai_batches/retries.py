"""What the retries are doing: progress while they wait, and why they gave up.

dlt's request `Client` retries with tenacity inside `session.send`; its `Retrying` object
is reachable there, so batchlens hooks in instead of re-implementing the retries: each
noticeable wait is announced on the `batchlens` logger (stderr, one line), and the final
error carries the number of attempts made (`attempts`) for the one-line message.
"""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

log = logging.getLogger("batchlens")

# Waits shorter than this pass unannounced: quick retries need no commentary.
ANNOUNCE_WAITS_FROM_S = 1.0


def watch(session: Any) -> None:
    """Announces retries of `session` (a dlt `Client` session) and counts attempts."""
    retrying = getattr(session.send, "retry", None)
    if retrying is None:  # not a retrying session: nothing to watch
        return
    gave_up = retrying.retry_error_callback

    def before_sleep(state: Any) -> None:
        wait = state.next_action.sleep if state.next_action else 0.0
        if wait < ANNOUNCE_WAITS_FROM_S:
            return
        of = getattr(state.retry_object.stop, "max_attempt_number", None)
        log.warning(
            "%s: attempt %d%s failed (%s); retrying in %.0f s",
            _where(state.args),
            state.attempt_number,
            f" of {of}" if of else "",
            _outcome(state.outcome),
            wait,
        )

    def count_attempts(state: Any) -> Any:
        error = state.outcome.exception()
        if error is not None:
            error.attempts = state.attempt_number
        else:
            state.outcome.result().attempts = state.attempt_number
        return gave_up(state) if gave_up else state.outcome.result()

    retrying.before_sleep = before_sleep
    retrying.retry_error_callback = count_attempts


@dataclass(frozen=True)
class Policy:
    """The session's retry policy, for what its retries cannot see: a body that breaks off
    after the answer began (dlt's retries wrap `send`, which a streamed body outlives)."""

    attempts: int
    _wait: Any = None

    def wait(self, attempt: int) -> float:
        """Seconds before attempt `attempt + 1`: the same exponential backoff as dlt's."""
        if self._wait is None:
            return 0.0
        exp = self._wait.exp_base ** (attempt - 1)
        return float(max(self._wait.min, min(self._wait.max, self._wait.multiplier * exp)))


def policy(session: Any) -> Policy:
    """The attempts and backoff of `session`'s retries (`[runtime] request_max_attempts`,
    `request_backoff_factor`, `request_max_retry_delay`): read from its own `Retrying`."""
    retrying = getattr(session.send, "retry", None)
    if retrying is None:
        return Policy(attempts=1)
    attempts = getattr(retrying.stop, "max_attempt_number", 1)
    wait = (
        retrying.wait
        if all(hasattr(retrying.wait, name) for name in ("exp_base", "min", "max", "multiplier"))
        else None
    )
    return Policy(attempts=int(attempts), _wait=wait)


def announce(what: str, attempt: int, of: int, why: str, wait: float) -> None:
    """One line on stderr for a wait long enough to wonder about, as `watch` says them."""
    if wait >= ANNOUNCE_WAITS_FROM_S:
        log.warning(
            "%s: attempt %d of %d failed (%s); retrying in %.0f s", what, attempt, of, why, wait
        )


def _where(args: tuple) -> str:
    request = args[0] if args else None
    url = urlsplit(getattr(request, "url", "") or "")
    # no query string, and never a user:password@ that someone put in the base URL
    return f"GET {url.scheme}://{url.hostname}{f':{url.port}' if url.port else ''}{url.path}"


def _outcome(outcome: Any) -> str:
    error = outcome.exception()
    if error is not None:
        return cause(error)
    return f"HTTP {outcome.result().status_code}"


def cause(error: BaseException) -> str:
    """Why a request never got an answer, in a user's words: DNS, refused, TLS, timeout."""
    chain = list(_chain(error))
    text = " ".join(str(link) for link in chain)
    if any(isinstance(link, socket.gaierror) for link in chain) or "resolve" in text:
        return "DNS lookup failed: the host name does not resolve"
    if any(isinstance(link, ssl.SSLError | requests.exceptions.SSLError) for link in chain):
        return "TLS handshake failed"
    if any(isinstance(link, requests.ConnectTimeout) for link in chain):
        return "timed out connecting"
    if any(isinstance(link, requests.Timeout | TimeoutError) for link in chain):
        return "timed out waiting for the answer (request_timeout)"
    if any(isinstance(link, ConnectionRefusedError) for link in chain) or "refused" in text:
        return "connection refused: nothing listens at that address"
    if "reset" in text or "aborted" in text or "RemoteDisconnected" in text:
        return "the connection was dropped"
    return type(error).__name__


def _chain(error: BaseException) -> Any:
    """The error, what it wraps (`__cause__`, `__context__`) and urllib3's `reason`s."""
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        link = pending.pop()
        if not isinstance(link, BaseException) or id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        pending.extend([link.__cause__, link.__context__, getattr(link, "reason", None)])
        pending.extend(link.args)
