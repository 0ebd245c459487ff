"""How providers behind a Portkey gateway answer the OpenAI list endpoint.

`openai`: the real API. `bedrock` and `cohere`: everything in one page whatever `limit`
and `after` say, no `has_more` (a naive client loops forever), timestamps in milliseconds,
their own status words. `vertex`: `after` is an opaque page token, which the answer's
`last_id` carries.
"""

from __future__ import annotations

from typing import Any

from batchlens.simulator.faults import to_milliseconds

SHAPES = ("openai", "bedrock", "cohere", "vertex")

# What each provider calls the OpenAI statuses (Bedrock's as the gateway snake-cases them).
STATUS_WORDS: dict[str, dict[str, str]] = {
    "bedrock": {
        "validating": "submitted",
        "in_progress": "in_progress",
        "finalizing": "in_progress",
        "completed": "completed",
        "failed": "failed",
        "expired": "expired",
        "cancelling": "stopping",
        "cancelled": "stopped",
    },
    "cohere": {
        "validating": "processing",
        "in_progress": "processing",
        "finalizing": "processing",
        "completed": "complete",
        "failed": "failed",
        "expired": "failed",
        "cancelling": "cancelling",
        "cancelled": "cancelled",
    },
    "vertex": {
        "validating": "JOB_STATE_QUEUED",
        "in_progress": "JOB_STATE_RUNNING",
        "finalizing": "JOB_STATE_RUNNING",
        "completed": "JOB_STATE_SUCCEEDED",
        "failed": "JOB_STATE_FAILED",
        "expired": "JOB_STATE_EXPIRED",
        "cancelling": "JOB_STATE_CANCELLING",
        "cancelled": "JOB_STATE_CANCELLED",
    },
}


def as_provider(shape: str, batch: dict[str, Any]) -> dict[str, Any]:
    """One Batch object as the provider shows it through the gateway."""
    if shape == "openai":
        return batch
    shown = dict(batch)
    shown["status"] = STATUS_WORDS[shape][batch["status"]]
    return to_milliseconds(shown) if shape in ("bedrock", "cohere") else shown


def page_token(position: int) -> str:
    return f"vtx-page-{position:08d}"


def position_of(token: str) -> int | None:
    prefix = "vtx-page-"
    if not token.startswith(prefix) or not token[len(prefix) :].isdigit():
        return None
    return int(token[len(prefix) :])
