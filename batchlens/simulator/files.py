"""A batch's output and error files as the Files API serves them, rendered from its plan.

Each terminal batch's files are drawn from the plan alone (seeded by the batch id), so the
same history always serves the same bytes, and they agree with the Batch object:
the output file has one line per completed request, the error file one per failed request
(plus, for expired and cancelled batches, one per request that never ran), the per-line
usage of a completed batch adds up to the batch's `usage`, and the lines come in shuffled
order with both error shapes and hostile `custom_id`s. Files expire (404) 30 days after
the batch ends, as OpenAI's default retention does.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from batchlens.simulator.history import DAY, NO_OUTPUT_ENDPOINTS, BatchPlan

RETENTION = 30 * DAY
# Text put in every response body: the loader must never store it (tests grep for it).
CONTENT_MARKER = "SIM-USER-CONTENT"

# (status, type, code, message, param): what the API answers a request it rejects.
HTTP_ERRORS = (
    (400, "invalid_request_error", "context_length_exceeded",
     "This model's maximum context length is 128000 tokens. However, your messages "
     "resulted in 131072 tokens. Please reduce the length of the messages.", "messages"),
    (400, "invalid_request_error", "invalid_value",
     "Invalid value for 'temperature': expected a number between 0 and 2.", "temperature"),
    (400, "invalid_request_error", None,
     "Additional properties are not allowed ('<b>foo</b>' was unexpected).", None),
    (404, "invalid_request_error", "model_not_found",
     "The model 'gpt-9' does not exist or you do not have access to it.", "model"),
    (429, "requests", "rate_limit_exceeded",
     "Rate limit reached for requests per day. [link](https://example.com)", None),
    (500, "server_error", None,
     "The server had an error while processing your request. Sorry about that!", None),
)  # fmt: skip
TIMEOUT_SHARE = 0.15  # failed requests reported with the per-request shape `request_timeout`
# custom_ids people actually write: quotes, unicode, markup, separators
AWKWARD_IDS = (
    'say "hi" {i}',
    "ünïcødé ✓ 日本語 {i}",
    "<script>alert({i})</script>",
    "[red]rich[/red] markup {i}",
    "comma,semi;colon\ttab {i}",
    "back\\slash 'single' {i}",
)


@dataclass(frozen=True)
class BatchFile:
    """One file of one batch: which batch, which kind, and when it is served."""

    file_id: str
    kind: str  # "output" | "error"
    plan: BatchPlan

    @property
    def created_at(self) -> int:
        assert self.plan.files_at is not None
        return self.plan.files_at

    @property
    def expires_at(self) -> int:
        return self.created_at + RETENTION

    def served_at(self, clock: int) -> bool:
        """Visible once the batch is terminal, gone (404) once retention has passed."""
        return self.plan.files_at is not None and self.created_at <= clock < self.expires_at

    def metadata(self, size: int) -> dict[str, Any]:
        return {
            "id": self.file_id,
            "object": "file",
            "bytes": size,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "filename": f"{self.plan.id}_{self.kind}.jsonl",
            "purpose": f"batch_{self.kind}",
            "status": "processed",
        }


def files_of(plan: BatchPlan) -> list[BatchFile]:
    found = []
    if plan.output_file_id:
        found.append(BatchFile(plan.output_file_id, "output", plan))
    if plan.error_file_id:
        found.append(BatchFile(plan.error_file_id, "error", plan))
    return found


def unfinished(plan: BatchPlan) -> int:
    """Requests that never ran: written to the error file of an expired or cancelled batch."""
    if plan.scenario not in ("expired", "cancelled") or not plan.error_file_id:
        return 0
    return plan.total - plan.completed - plan.failed


def custom_ids(plan: BatchPlan) -> list[str]:
    """Unique within the batch; about one in ten is awkward."""
    return [json.loads(custom_id) for custom_id in _custom_ids_json(plan)]


def _custom_ids_json(plan: BatchPlan) -> list[str]:
    """`custom_ids` as JSON strings (escaping only the awkward ones costs less)."""
    rng = random.Random(f"custom-ids-{plan.id}")
    ids = []
    for i in range(plan.total):
        if rng.random() < 0.1:
            ids.append(json.dumps(rng.choice(AWKWARD_IDS).format(i=i), ensure_ascii=False))
        else:
            ids.append(f'"request-{i}"')
    return ids


def iter_lines(file: BatchFile, padding: int = 0) -> Iterator[str]:
    """The file's JSONL lines, in shuffled order; `padding` adds characters to each body.

    Lazily, so the server can start answering at once: a 50,000-line output file takes
    seconds to write, and a client's read timeout must not fire before the first byte.
    Written from string templates (values JSON-escaped one by one), not dicts, for speed.
    """
    plan = file.plan
    ids = _custom_ids_json(plan)
    rng = random.Random(f"file-{file.kind}-{plan.id}")
    if file.kind == "output":
        usages = _split_usage(rng, plan, plan.completed)
        head = _output_head(plan, padding)
        order = list(range(plan.completed))
        rng.shuffle(order)
        for i in order:
            yield _output_line(rng, head, ids[i], plan.endpoint, usages[i])
        return
    failed = plan.failed
    order = list(range(failed + unfinished(plan)))
    rng.shuffle(order)
    code = "batch_expired" if plan.scenario == "expired" else "batch_cancelled"
    for i in order:
        custom_id = ids[plan.completed + i]
        yield _failed_line(rng, custom_id) if i < failed else _outcome_line(rng, custom_id, code)


def lines(file: BatchFile, padding: int = 0) -> list[str]:
    return list(iter_lines(file, padding))


def chunks(file: BatchFile, padding: int = 0, size: int = 64 * 1024) -> Iterator[bytes]:
    """The file's content in pieces of about `size` bytes, each line ending in a newline."""
    pending: list[str] = []
    length = 0
    for line in iter_lines(file, padding):
        pending.append(line)
        length += len(line) + 1
        if length >= size:
            yield ("\n".join(pending) + "\n").encode()
            pending, length = [], 0
    if pending:
        yield ("\n".join(pending) + "\n").encode()


def content(file: BatchFile, padding: int = 0) -> bytes:
    return b"".join(chunks(file, padding))


def _ids(rng: random.Random) -> str:
    """The line's `id` and its response's `request_id`, both random hex."""
    bits = rng.getrandbits(160)
    return f'"batch_req_{bits >> 64:024x}", "req_{bits & (2**64 - 1):016x}"'


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    """`parts` non-negative integers that add up to `total`."""
    if parts == 0:
        return []
    weights = [rng.random() + 0.05 for _ in range(parts)]
    scale = sum(weights)
    shares = [int(total * weight / scale) for weight in weights]
    shares[-1] += total - sum(shares)
    return shares


def _split_usage(rng: random.Random, plan: BatchPlan, n: int) -> list[dict[str, int]]:
    """Per-request usage; for a batch with `usage`, the lines add up to it exactly."""
    usage = plan.usage
    if usage is None:  # an older batch, or one that did not complete: usage of its own
        usage = {
            "input_tokens": n * 300,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 0 if plan.endpoint in NO_OUTPUT_ENDPOINTS else n * 120,
            "output_tokens_details": {"reasoning_tokens": 0},
        }
    fields = {
        "input": _split(rng, usage["input_tokens"], n),
        "cached": _split(rng, usage["input_tokens_details"]["cached_tokens"], n),
        "output": _split(rng, usage["output_tokens"], n),
        "reasoning": _split(rng, usage["output_tokens_details"]["reasoning_tokens"], n),
    }
    return [{name: values[i] for name, values in fields.items()} for i in range(n)]


def _usage_body(endpoint: str, usage: dict[str, int]) -> dict[str, Any]:
    """Each endpoint names its usage its own way."""
    total = usage["input"] + usage["output"]
    if endpoint == "/v1/responses":
        return {
            "input_tokens": usage["input"],
            "input_tokens_details": {"cached_tokens": usage["cached"]},
            "output_tokens": usage["output"],
            "output_tokens_details": {"reasoning_tokens": usage["reasoning"]},
            "total_tokens": total,
        }
    if endpoint in NO_OUTPUT_ENDPOINTS:
        return {
            "prompt_tokens": usage["input"],
            "total_tokens": total,
            "prompt_tokens_details": {"cached_tokens": usage["cached"]},
        }
    return {
        "prompt_tokens": usage["input"],
        "completion_tokens": usage["output"],
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": usage["cached"]},
        "completion_tokens_details": {"reasoning_tokens": usage["reasoning"]},
    }


def _output_head(plan: BatchPlan, padding: int) -> str:
    """What every output line of the batch shares, up to the usage."""
    model = json.dumps(plan.model or "gpt-4o-mini-2024-07-18")
    text = json.dumps(f"{CONTENT_MARKER}: the answer is 42" + "x" * padding)
    return (
        f'"object": "chat.completion", "created": {plan.files_at}, "model": {model}, '
        f'"choices": [{{"index": 0, "message": {{"role": "assistant", "content": {text}}}}}]'
    )


def _output_line(
    rng: random.Random, head: str, custom_id: str, endpoint: str, usage: dict[str, int]
) -> str:
    line_id, request_id = _ids(rng).split(", ")
    usage_json = json.dumps(_usage_body(endpoint, usage))
    body = f'{{"id": "chatcmpl-{rng.getrandbits(64):016x}", {head}, "usage": {usage_json}}}'
    return (
        f'{{"id": {line_id}, "custom_id": {custom_id}, "response": {{"status_code": 200, '
        f'"request_id": {request_id}, "body": {body}}}, "error": null}}'
    )


_HTTP_ERROR_BODIES = tuple(
    (status, json.dumps({"error": {"message": m, "type": t, "param": p, "code": c}}))
    for status, t, c, m, p in HTTP_ERRORS
)
_OUTCOME_MESSAGES = {
    "batch_expired": "This request could not be executed before the completion window expired.",
    "batch_cancelled": "This request was not executed because the batch was cancelled.",
    "request_timeout": "The request timed out.",
}
_OUTCOME_ERRORS = {
    code: json.dumps({"code": code, "message": message})
    for code, message in _OUTCOME_MESSAGES.items()
}


def _failed_line(rng: random.Random, custom_id: str) -> str:
    if rng.random() < TIMEOUT_SHARE:
        return _outcome_line(rng, custom_id, "request_timeout")
    status, body = rng.choice(_HTTP_ERROR_BODIES)
    line_id, request_id = _ids(rng).split(", ")
    return (
        f'{{"id": {line_id}, "custom_id": {custom_id}, "response": {{"status_code": {status}, '
        f'"request_id": {request_id}, "body": {body}}}, "error": null}}'
    )


def _outcome_line(rng: random.Random, custom_id: str, code: str) -> str:
    line_id = f'"batch_req_{rng.getrandbits(96):024x}"'
    error = _OUTCOME_ERRORS[code]
    return f'{{"id": {line_id}, "custom_id": {custom_id}, "response": null, "error": {error}}}'
