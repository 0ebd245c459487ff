"""Fault rules for the simulator: which request gets which failure, decided thread-safely.

Real clients meet rate limits, 5xx, dropped sockets, gateways that mangle bodies and cursors
that never advance. Rules make those failures reproducible: "every 5th list request" or "the
next 3 requests", counted per rule, so a test can assert exactly how a client recovered.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from batchlens.simulator.history import TIMESTAMP_FIELDS

KINDS = (
    "429",
    "500",
    "502",
    "503",
    "drop",  # close the socket without any response
    "cut",  # the answer's body breaks off halfway: the connection closes mid-body
    "reset",  # the connection is reset (TCP RST) halfway through the answer's body
    "timeout",  # sleep longer than the client will wait, then answer normally
    "malformed",  # 200 with truncated JSON; a file's content is cut off after its first piece
    "html",  # 200 {"html-message": ...}: the Portkey gateway's answer for a non-JSON upstream
    "stuck_cursor",  # a list page that ignores `after`: the first page again, has_more true
    "empty_more",  # 200 with data [] and has_more true
    "ms_timestamps",  # timestamps in milliseconds, as some non-OpenAI providers send
    "new_fields",  # fields inside request_counts, usage and errors.data the API may add later
    "odd_types",  # known fields with values of another type: counts sent as strings
)
LIST_ONLY = {"stuck_cursor", "empty_more"}  # meaningless for a single-batch retrieve
MID_BODY = {"cut", "reset"}  # faults that send half an answer, then break the connection
# "file": GET /v1/files/{id} and /v1/files/{id}/content, "content": the latter only ("any"
# includes them all)
TARGETS = ("list", "retrieve", "file", "content", "any")


@dataclass
class Fault:
    """One rule. `every=n`: every n-th matching request; `times=k`: at most k firings.

    Without either, every matching request is faulted until the rules are cleared.
    `match`: only requests whose path or query holds this text (a file's id; a batch id,
    which picks its retrieve and the list page after it).
    """

    kind: str
    every: int | None = None
    times: int | None = None
    on: str = "any"
    match: str | None = None
    retry_after: str = "1"  # the 429's Retry-After header
    delay: float = 5.0  # seconds a "timeout" fault sleeps before answering
    seen: int = 0
    fired: int = 0
    awaiting_retry: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.on not in TARGETS:
            raise ValueError(f"on must be one of {TARGETS}, not {self.on!r}")
        if self.every is not None and self.every < 1:
            raise ValueError("every must be >= 1")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0")

    def applies_to(self, target: str, request: str = "") -> bool:
        if self.kind in LIST_ONLY and target != "list":
            return False
        if self.match is not None and self.match not in request:
            return False
        return self.on in ("any", target) or (self.on == "file" and target == "content")

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


class FaultBook:
    """The active rules; `draw` is called once per API request and picks at most one fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self.injected = 0

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._rules.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def draw(self, target: str, request: str = "") -> Fault | None:
        """Count the request against every matching rule; the first rule due fires.

        Every matching rule counts the request (a faulted request still counts), so two
        rules keep their own cadence instead of shadowing each other. An `every` rule lets
        the retry of a request it faulted through and fires on the next one instead: one
        after another that changes nothing (the retry comes next, never due), but with
        requests in flight together the retry could otherwise land on the rule's turn again
        and again, which no real API does. `request` identifies it (method, path, query).
        """
        chosen = None
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.applies_to(target, request):
                    continue
                retry = request in rule.awaiting_retry
                rule.awaiting_retry.discard(request)
                rule.seen += 1
                due = rule.every is None or rule.seen % rule.every == 0
                if due and retry and rule.every and rule.every > 1:
                    rule.seen -= 1  # the turn passes to the next request
                    continue
                if due and chosen is None:
                    rule.fired += 1
                    chosen = rule
                    if rule.every and rule.every > 1 and request:
                        rule.awaiting_retry.add(request)
            if chosen is not None:
                self.injected += 1
        return chosen


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> bytes:
    """An OpenAI-shaped error, the body every OpenAI client knows how to read."""
    error = {"message": message, "type": type_, "param": param, "code": code}
    return json.dumps({"error": error}).encode()


def status_fault(kind: str) -> tuple[int, bytes, str]:
    """(status, body, content type) for the HTTP-status faults.

    502 comes back as HTML, as a load balancer in front of the API sends it.
    """
    if kind == "429":
        message = "Rate limit reached for requests. Please try again in 1s."
        return 429, error_body(message, "requests", "rate_limit_exceeded"), "application/json"
    if kind == "500":
        message = "The server had an error while processing your request. Sorry about that!"
        return 500, error_body(message, "server_error"), "application/json"
    if kind == "502":
        html = b"<html><head><title>502 Bad Gateway</title></head><body>Bad gateway</body></html>"
        return 502, html, "text/html"
    message = "The engine is currently overloaded, please try again later."
    return 503, error_body(message, "server_error", "service_unavailable"), "application/json"


def html_message() -> bytes:
    return json.dumps({"html-message": "<html>upstream error</html>"}).encode()


def truncate(body: bytes) -> bytes:
    """Cut a JSON body in half: a 200 whose body no JSON parser accepts."""
    return body[: max(1, len(body) // 2)]


def to_milliseconds(batch: dict[str, Any]) -> dict[str, Any]:
    """The same batch with every timestamp in milliseconds (Bedrock- and Cohere-style)."""
    shown = dict(batch)
    for name in TIMESTAMP_FIELDS:
        if isinstance(shown.get(name), int):
            shown[name] *= 1000
    return shown


def with_new_fields(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch with fields nobody knows yet, inside each nested object.

    `request_counts.expired_n` = total - completed - failed; `usage` gains
    `input_tokens_details.audio_tokens` = input_tokens // 10 and a new object
    `server_tools.web_search.calls` = 1; each `errors.data` entry gains `retryable` = false.
    """
    shown = dict(batch)
    counts = batch.get("request_counts")
    if isinstance(counts, dict):
        expired = counts["total"] - counts["completed"] - counts["failed"]
        shown["request_counts"] = {**counts, "expired_n": expired}
    usage = batch.get("usage")
    if isinstance(usage, dict):
        audio = (usage.get("input_tokens") or 0) // 10
        details = {**(usage.get("input_tokens_details") or {}), "audio_tokens": audio}
        shown["usage"] = {
            **usage,
            "input_tokens_details": details,
            "server_tools": {"web_search": {"calls": 1}},
        }
    errors = batch.get("errors")
    if isinstance(errors, dict) and errors.get("data"):
        entries = [{**entry, "retryable": False} for entry in errors["data"]]
        shown["errors"] = {**errors, "data": entries}
    return shown


def with_odd_types(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch with numbers sent as strings: `request_counts.total`,
    `usage.input_tokens_details.cached_tokens` and each `errors.data` entry's `line`."""
    shown = dict(batch)
    counts = batch.get("request_counts")
    if isinstance(counts, dict):
        shown["request_counts"] = {**counts, "total": str(counts["total"])}
    usage = batch.get("usage")
    if isinstance(usage, dict):
        details = usage.get("input_tokens_details") or {}
        cached = {**details, "cached_tokens": str(details.get("cached_tokens"))}
        shown["usage"] = {**usage, "input_tokens_details": cached}
    errors = batch.get("errors")
    if isinstance(errors, dict) and errors.get("data"):
        entries = [
            {**entry, "line": None if entry.get("line") is None else str(entry["line"])}
            for entry in errors["data"]
        ]
        shown["errors"] = {**errors, "data": entries}
    return shown


# Faults that answer normally with every batch altered.
BODY_FAULTS = {
    "ms_timestamps": to_milliseconds,
    "new_fields": with_new_fields,
    "odd_types": with_odd_types,
}
