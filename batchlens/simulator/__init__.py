"""The built-in simulator of the OpenAI Batch API: offline, deterministic, fault-injectable."""

from batchlens.simulator.history import (
    DEFAULT_NOW,
    SCENARIOS,
    BatchPlan,
    generate_history,
    plan_batch,
    render,
)
from batchlens.simulator.server import DEFAULT_API_KEY, Simulator, serve_forever

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_NOW",
    "SCENARIOS",
    "BatchPlan",
    "Simulator",
    "generate_history",
    "plan_batch",
    "render",
    "serve_forever",
]
