"""A deterministic, synthetic Batch API history: lifecycle plans and how the API shows them.

A batch is stored as a *plan*: every stage it will ever reach, with the time it reaches it.
`render(plan, clock)` then shows the batch exactly as the real API would at that moment, so
one history can be replayed at any simulated time and a loader can be tested against a
past that keeps moving (batches finish, counts grow, files appear) without any wall clock.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any

# The batch object's timestamps as OpenAI documents them, in lifecycle order. Spelled here,
# not imported from the source: the simulator stands for the API the source is tested
# against, and importing the source would load dlt into `batchlens --help`.
TIMESTAMP_FIELDS = (
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)

# 2026-01-01T00:00:00Z. A fixed "now" keeps every run, test and benchmark identical.
DEFAULT_NOW = 1_767_225_600

MINUTE = 60
HOUR = 3_600
DAY = 86_400
WINDOW = DAY  # completion_window "24h": expires_at is always created_at + 24 h
HISTORY_DAYS = 60
FOREVER = 2**62  # "never changes again" for cache validity

ENDPOINTS = (
    ("/v1/chat/completions", 0.45),
    ("/v1/responses", 0.20),
    ("/v1/embeddings", 0.20),
    ("/v1/moderations", 0.08),
    ("/v1/completions", 0.07),
)
MODELS = {
    "/v1/chat/completions": ("gpt-4o-mini", "gpt-4o-2024-08-06", "gpt-4.1-mini", "o4-mini"),
    "/v1/responses": ("gpt-5-mini", "gpt-5", "gpt-4.1", "o4-mini"),
    "/v1/embeddings": ("text-embedding-3-small", "text-embedding-3-large"),
    "/v1/moderations": ("omni-moderation-latest",),
    "/v1/completions": ("gpt-3.5-turbo-instruct", "davinci-002"),
}
# A fine-tuned model no price catalogue can know, so the demo shows an unpriced model. It
# replaces some gpt-4o-mini batches by their creation second rather than by a draw, which
# would shift the random stream and with it every history the tests are built on.
FINE_TUNED_MODEL = "ft:gpt-4o-mini:acme::abc123"
REASONING_MODELS = {"o4-mini", "gpt-5", "gpt-5-mini"}
NO_OUTPUT_ENDPOINTS = {"/v1/embeddings", "/v1/moderations"}

# Scenarios are the shapes a lifecycle can take; the weights are a plausible account, not data.
SCENARIO_WEIGHTS = {
    "completed": 0.62,
    "partial_failures": 0.09,  # completed, a few requests failed
    "all_failed": 0.02,  # completed with failed == total: no output file, only an error file
    "slow_finalizing": 0.05,  # completed after 1-4 days in finalizing
    "failed_validation": 0.08,
    "failed_run": 0.03,
    "expired": 0.05,
    "cancelled": 0.06,
}
SCENARIOS = tuple(SCENARIO_WEIGHTS)
_SCENARIO_PAIRS = tuple(SCENARIO_WEIGHTS.items())
COMPLETING = {"completed", "partial_failures", "all_failed", "slow_finalizing"}

STAGE_FIELDS = TIMESTAMP_FIELDS[1:2] + TIMESTAMP_FIELDS[3:]  # planned stages, expires_at aside

VALIDATION_ERRORS = (
    ("invalid_json", "Line {line} is not valid JSON.", None, True),
    (
        "token_limit_exceeded",
        "Enqueued token limit reached for {model} in organization org-sim. Limit: 2,000,000 "
        "enqueued tokens. Please try again once some in_progress batches have been completed.",
        None,
        False,
    ),
    ("missing_required_parameter", "Missing required parameter: 'custom_id'.", "custom_id", True),
    ("invalid_url", "The URL provided for this request does not match the batch.", "url", True),
    ("duplicate_custom_id", "The custom_id for this request is a duplicate.", "custom_id", True),
    ("model_not_found", "The model '{model}' does not exist.", "body.model", True),
)
RUN_ERRORS = (
    ("server_error", "The batch failed due to an internal error. Please try again."),
    ("token_limit_exceeded", "Enqueued token limit reached for {model}. Please try again later."),
)
METADATA_SAMPLES = (
    {"project": "evals", "run": "nightly"},
    {"project": "search", "job": "reindex-embeddings"},
    {"team": "support", "purpose": "ticket-triage"},
    {"description": "weekly moderation sweep"},
    {"project": "evals", "run": "ablation-7", "owner": "mlops"},
)
_FILE_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """One batch's whole future: what it is and when it reaches each stage.

    Stage times may lie after the simulated clock; `render` hides them until they are reached.
    `completed`/`failed` are the counts at the end of the run (when processing stops).
    """

    id: str
    scenario: str
    endpoint: str
    model: str | None  # None: an older batch whose object has no `model` (nor `usage`) key
    input_file_id: str
    created_at: int
    in_progress_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    total: int
    completed: int
    failed: int
    usage: dict[str, Any] | None
    errors: tuple[dict[str, Any], ...] | None
    output_file_id: str | None
    error_file_id: str | None
    metadata: dict[str, str] | None

    @property
    def expires_at(self) -> int:
        return self.created_at + WINDOW

    @property
    def run_end(self) -> int | None:
        """When processing stops and the counts freeze (None: never started or never stops)."""
        if self.in_progress_at is None:
            return None
        return self.finalizing_at or self.failed_at or self.expired_at or self.cancelling_at

    @property
    def files_at(self) -> int | None:
        """When the output/error files become visible: the terminal stage."""
        return self.completed_at or self.expired_at or self.cancelled_at or self.failed_at


def _reached(at: int | None, clock: int) -> bool:
    return at is not None and at <= clock


def status_at(plan: BatchPlan, clock: int) -> str:
    """The latest stage reached by `clock` (terminal stages first: they are the latest)."""
    if _reached(plan.completed_at, clock):
        return "completed"
    if _reached(plan.failed_at, clock):
        return "failed"
    if _reached(plan.expired_at, clock):
        return "expired"
    if _reached(plan.cancelled_at, clock):
        return "cancelled"
    if _reached(plan.cancelling_at, clock):
        return "cancelling"
    if _reached(plan.finalizing_at, clock):
        return "finalizing"
    if _reached(plan.in_progress_at, clock):
        return "in_progress"
    return "validating"


def _counts_at(plan: BatchPlan, clock: int) -> dict[str, int]:
    """Counts grow linearly over the run, so a poller sees progress between two reads."""
    start, end = plan.in_progress_at, plan.run_end
    if start is None or start > clock:
        return {"total": plan.total, "completed": 0, "failed": 0}
    if end is None or end <= clock:
        return {"total": plan.total, "completed": plan.completed, "failed": plan.failed}
    share = (clock - start) / (end - start)
    return {
        "total": plan.total,
        "completed": int(plan.completed * share),
        "failed": int(plan.failed * share),
    }


def render(plan: BatchPlan, clock: int) -> dict[str, Any] | None:
    """The Batch object as `GET /v1/batches/{id}` would return it at `clock`, or None if unborn.

    Every key of the real object is present (null when unset), in the API's order, except
    `model` and `usage`, which real older batches omit altogether.
    """
    if plan.created_at > clock:
        return None

    def seen(at: int | None) -> int | None:
        return at if at is not None and at <= clock else None

    status = status_at(plan, clock)
    files_visible = _reached(plan.files_at, clock)
    batch: dict[str, Any] = {
        "id": plan.id,
        "object": "batch",
        "endpoint": plan.endpoint,
    }
    if plan.model is not None:
        batch["model"] = plan.model
    batch.update(
        {
            "errors": (
                {"object": "list", "data": [dict(error) for error in plan.errors]}
                if plan.errors and _reached(plan.failed_at, clock)
                else None
            ),
            "input_file_id": plan.input_file_id,
            "completion_window": "24h",
            "status": status,
            "output_file_id": plan.output_file_id if files_visible else None,
            "error_file_id": plan.error_file_id if files_visible else None,
            "created_at": plan.created_at,
            "in_progress_at": seen(plan.in_progress_at),
            "expires_at": plan.expires_at,
            "finalizing_at": seen(plan.finalizing_at),
            "completed_at": seen(plan.completed_at),
            "failed_at": seen(plan.failed_at),
            "expired_at": seen(plan.expired_at),
            "cancelling_at": seen(plan.cancelling_at),
            "cancelled_at": seen(plan.cancelled_at),
            "request_counts": _counts_at(plan, clock),
        }
    )
    if plan.model is not None:
        usage = plan.usage if status == "completed" else None
        batch["usage"] = _copy_usage(usage) if usage is not None else None
    batch["metadata"] = dict(plan.metadata) if plan.metadata is not None else None
    return batch


def _copy_usage(usage: dict[str, Any]) -> dict[str, Any]:
    return {key: dict(value) if isinstance(value, dict) else value for key, value in usage.items()}


def next_change(plan: BatchPlan, clock: int) -> int:
    """The first clock value at which `render(plan, ...)` may differ from `render(plan, clock)`.

    Lets a server cache a rendered batch until then: terminal batches never change again.
    """
    if plan.created_at > clock:
        return plan.created_at
    upcoming = [at for at in (getattr(plan, name) for name in STAGE_FIELDS) if at and at > clock]
    change = min(upcoming, default=FOREVER)
    if _reached(plan.in_progress_at, clock) and not _reached(plan.run_end, clock):
        change = min(change, clock + 1)  # counts grow while in progress
    return change


# --- generation ---------------------------------------------------------------------------


def _batch_id(rng: random.Random) -> str:
    return f"batch_{rng.getrandbits(96):024x}"


def _file_id(rng: random.Random) -> str:
    """`file-` and 22 base62 characters, like the real ids (one rng call: 100k plans fast)."""
    number, chars = rng.getrandbits(131), []
    for _ in range(22):
        number, digit = divmod(number, 62)
        chars.append(_FILE_ID_ALPHABET[digit])
    return "file-" + "".join(chars)


def _weighted(rng: random.Random, pairs: tuple[tuple[str, float], ...]) -> str:
    roll = rng.random() * sum(weight for _, weight in pairs)
    for name, weight in pairs:
        roll -= weight
        if roll < 0:
            return name
    return pairs[-1][0]


def _usage(rng: random.Random, endpoint: str, model: str, requests: int) -> dict[str, Any]:
    input_tokens = requests * rng.randint(40, 2_500)
    cached = int(input_tokens * rng.choice((0.0, 0.0, rng.uniform(0.05, 0.6))))
    output_tokens = 0 if endpoint in NO_OUTPUT_ENDPOINTS else requests * rng.randint(20, 900)
    reasoning = int(output_tokens * rng.uniform(0.2, 0.7)) if model in REASONING_MODELS else 0
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


def _validation_errors(rng: random.Random, model: str | None) -> tuple[dict[str, Any], ...]:
    errors = []
    for code, message, param, has_line in rng.sample(VALIDATION_ERRORS, rng.choice((1, 1, 2, 3))):
        line = rng.randint(1, 400) if has_line else None
        text = message.format(line=line, model=model or "gpt-4o-mini")
        errors.append({"code": code, "message": text, "param": param, "line": line})
    if errors[0]["code"] == "invalid_json" and rng.random() < 0.5:
        errors[0]["line"] = 3  # the classic: a hand-edited JSONL with a broken third line
        errors[0]["message"] = "Line 3 is not valid JSON."
    return tuple(errors)


def _metadata(rng: random.Random) -> dict[str, str] | None:
    roll = rng.random()
    if roll < 0.2:
        return None
    if roll < 0.35:
        return {}
    return dict(rng.choice(METADATA_SAMPLES))


def plan_batch(
    rng: random.Random,
    created_at: int,
    scenario: str | None = None,
    *,
    validating: int | None = None,
    run: int | None = None,
    finalizing: int | None = None,
    cancel_after: int | None = None,
    cancelled_after: int | None = None,
) -> BatchPlan:
    """Draw one batch created at `created_at`; keyword durations (seconds) pin its timing.

    `cancel_after` counts from in_progress_at (or from created_at when the batch is
    cancelled while still validating, which happens when it is smaller than `validating`).
    """
    scenario = scenario or _weighted(rng, _SCENARIO_PAIRS)
    if scenario not in SCENARIO_WEIGHTS:
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {SCENARIOS}")
    endpoint = _weighted(rng, ENDPOINTS)
    model: str | None = rng.choice(MODELS[endpoint])
    if model == "gpt-4o-mini" and created_at % 5 == 0:
        model = FINE_TUNED_MODEL
    if rng.random() < 0.05:
        model = None
    # A rejected input file was never parsed: the real API reports total 0 for it.
    total = 0 if scenario == "failed_validation" else max(1, int(10 ** rng.uniform(0, 4.7)))
    if validating is None:
        validating = rng.randint(5, 240) if rng.random() < 0.95 else rng.randint(600, 2_400)
    if run is None:
        run = min(60 + int(total * rng.uniform(0.05, 1.5)) + rng.randint(0, 900), 20 * HOUR)
    if finalizing is None:
        finalizing = (
            rng.randint(DAY, 4 * DAY) if scenario == "slow_finalizing" else rng.randint(5, 1_800)
        )
    in_progress_at: int | None = created_at + validating
    times: dict[str, int | None] = dict.fromkeys(STAGE_FIELDS)
    completed = failed = 0
    errors = None
    has_output = has_error_file = False

    if scenario in COMPLETING:
        times["finalizing_at"] = in_progress_at + run
        times["completed_at"] = in_progress_at + run + finalizing
        if scenario == "all_failed":
            failed = total
        elif scenario == "partial_failures":
            failed = rng.randint(1, max(1, total // 10)) if total > 1 else 0
        completed = total - failed
        has_output, has_error_file = completed > 0, failed > 0
    elif scenario == "failed_validation":
        in_progress_at = None
        times["failed_at"] = created_at + validating
        errors = _validation_errors(rng, model)
    elif scenario == "failed_run":
        times["failed_at"] = in_progress_at + rng.randint(30, max(31, run))
        completed = int(total * rng.uniform(0.0, 0.5))
        failed = rng.randint(0, total - completed)
        code, message = rng.choice(RUN_ERRORS)
        text = message.format(model=model or "gpt-4o-mini")
        errors = ({"code": code, "message": text, "param": None, "line": None},)
        has_error_file = failed > 0
    elif scenario == "expired":
        times["expired_at"] = created_at + WINDOW
        completed = int(total * rng.uniform(0.05, 0.9))
        failed = rng.randint(0, (total - completed) // 10)
        # Unfinished requests are written to the error file with code batch_expired.
        has_output, has_error_file = completed > 0, True
    else:  # cancelled
        if cancel_after is None:
            during_validation = rng.random() < 0.35
            cancel_after = rng.randint(1, validating) if during_validation else None
            cancel_from = created_at if during_validation else in_progress_at
            cancel_after = cancel_after or rng.randint(10, max(11, run))
        else:
            during_validation = cancel_after < validating
            cancel_from = created_at if during_validation else in_progress_at
        if during_validation:
            in_progress_at = None
        times["cancelling_at"] = cancel_from + cancel_after
        times["cancelled_at"] = times["cancelling_at"] + (
            cancelled_after if cancelled_after is not None else rng.randint(5, 600)
        )
        if not during_validation:
            done = int(total * rng.uniform(0.0, 0.8))
            failed = rng.randint(0, done // 20)
            completed = done - failed
        has_output, has_error_file = completed > 0, failed > 0

    times["in_progress_at"] = in_progress_at
    usage = None
    if scenario in COMPLETING and model is not None and rng.random() < 0.9:
        usage = _usage(rng, endpoint, model, completed)
    return BatchPlan(
        id=_batch_id(rng),
        scenario=scenario,
        endpoint=endpoint,
        model=model,
        input_file_id=_file_id(rng),
        created_at=created_at,
        in_progress_at=times["in_progress_at"],
        finalizing_at=times["finalizing_at"],
        completed_at=times["completed_at"],
        failed_at=times["failed_at"],
        expired_at=times["expired_at"],
        cancelling_at=times["cancelling_at"],
        cancelled_at=times["cancelled_at"],
        total=total,
        completed=completed,
        failed=failed,
        usage=usage,
        errors=errors,
        output_file_id=_file_id(rng) if has_output else None,
        error_file_id=_file_id(rng) if has_error_file else None,
        metadata=_metadata(rng),
    )


def _open_at_now(rng: random.Random, now: int) -> list[BatchPlan]:
    """Batches scripted relative to `now` so that every open status is on screen at `now`.

    A random 60-day history almost never catches a batch inside its few minutes of
    validating or cancelling, yet a loader must see those statuses and see them change.
    """
    return [
        # validating now, in progress 50 s later
        plan_batch(rng, now - 40, "completed", validating=90),
        # in progress for 3 h, finalizing in about 2 h
        plan_batch(rng, now - 3 * HOUR, "completed", validating=120, run=5 * HOUR),
        # finalizing for 4 min, completed 11 min from now
        plan_batch(
            rng, now - 6 * HOUR, "completed", validating=60, run=6 * HOUR - 300, finalizing=900,
        ),
        # stuck finalizing since 2.5 days ago, completes a day from now
        plan_batch(
            rng, now - 3 * DAY, "slow_finalizing", validating=100, run=12 * HOUR,
            finalizing=3 * DAY + 12 * HOUR - 100,
        ),
        # cancelling for 3 min, cancelled 5 min from now
        plan_batch(
            rng, now - 2 * HOUR, "cancelled", validating=60, cancel_after=2 * HOUR - 240,
            cancelled_after=480,
        ),
        # in progress, will expire 4 h from now with partial results
        plan_batch(rng, now - 20 * HOUR, "expired", validating=300),
    ]  # fmt: skip


def _creation_times(rng: random.Random, count: int, start: int, end: int) -> list[int]:
    """Bursty submission times: singles, same-second groups (sharded jobs), quick runs."""
    times: list[int] = []
    while len(times) < count:
        at = rng.randint(start, end)
        roll = rng.random()
        if roll < 0.10:
            times.extend([at] * rng.randint(2, 12))
        elif roll < 0.16:
            for _ in range(rng.randint(3, 25)):
                times.append(min(at, end))
                at += rng.randint(0, 4)
        else:
            times.append(at)
    return sorted(times[:count])


def sort_key(batch_id: str, created_at: int) -> tuple[int, str]:
    """The API's order is newest first, ties broken by id; sort with reverse=True."""
    return (created_at, batch_id)


def generate_history(n: int, seed: int, now: int = DEFAULT_NOW) -> list[BatchPlan]:
    """`n` batches created over the ~60 days before `now`, newest first; same seed, same history.

    When `n` allows, every status is represented at `now`: a few batches are scripted to be
    open at `now`, and one batch of each terminal scenario is created at least a week back.
    """
    rng = random.Random(seed)
    plans = _open_at_now(rng, now)[:n]
    count = n - len(plans)
    times = _creation_times(rng, count, now - HISTORY_DAYS * DAY, now - MINUTE)
    scenarios: list[str | None] = [None] * count
    old = [i for i, at in enumerate(times) if at < now - 7 * DAY]
    for index, scenario in zip(
        rng.sample(old, min(len(old), len(SCENARIOS))), SCENARIOS, strict=False
    ):
        scenarios[index] = scenario
    plans.extend(
        plan_batch(rng, at, scenario) for at, scenario in zip(times, scenarios, strict=True)
    )
    plans.sort(key=lambda plan: sort_key(plan.id, plan.created_at), reverse=True)
    return plans
