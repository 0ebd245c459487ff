"""Status words of the providers a Portkey gateway puts behind the OpenAI list endpoint.

OpenAI's eight statuses pass through. Bedrock's (turned to snake_case by the gateway),
Cohere's and Vertex AI's map onto the nearest of the eight, so the models count them the
same way; the word the provider used is kept in `status_raw`.
"""

from __future__ import annotations

import functools
import re

from .settings import STATUSES

STATUS_ALIASES: dict[str, str] = {
    **{status: status for status in STATUSES},
    # Bedrock model-invocation jobs
    "submitted": "validating",
    "scheduled": "validating",
    "stopping": "cancelling",
    "stopped": "cancelled",
    "partially_completed": "completed",
    # Cohere embed jobs
    "processing": "in_progress",
    "complete": "completed",
    "canceled": "cancelled",
    # Vertex AI batch prediction jobs
    "job_state_queued": "validating",
    "job_state_pending": "validating",
    "job_state_running": "in_progress",
    "job_state_updating": "in_progress",
    "job_state_paused": "in_progress",
    "job_state_succeeded": "completed",
    "job_state_partially_succeeded": "completed",
    "job_state_failed": "failed",
    "job_state_cancelling": "cancelling",
    "job_state_cancelled": "cancelled",
    "job_state_expired": "expired",
}


def normalize_word(raw: str) -> str:
    """`InProgress`, `in-progress` and `IN_PROGRESS` are one word: `in_progress`."""
    word = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", raw.strip())
    return re.sub(r"[^a-zA-Z0-9]+", "_", word).strip("_").lower()


@functools.lru_cache(maxsize=1024)
def map_status(raw: object) -> tuple[str | None, bool]:
    """(status, known). An unknown word is kept, normalized, and the batch stays open."""
    if not isinstance(raw, str) or not raw.strip():
        return None, False
    word = normalize_word(raw)
    mapped = STATUS_ALIASES.get(word)
    return (mapped, True) if mapped else (word, False)
