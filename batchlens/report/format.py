"""How the report and its page write values: shared, so the terminal and the page agree."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from rich.text import Text

NO_MODEL = "(no model)"  # a batch without a model, in every table and chart
NO_CODE = "(no code)"  # an error entry without a code
# How the open batches are ordered (sql/queries/report/open_batches.sql), said the same way
# under the terminal's table and the page's.
OPEN_BATCHES_ORDER = "stuck first, then overdue, then the oldest"


def flags(row: dict[str, Any]) -> Text:
    """STUCK and OVERDUE after the status, in red where there is colour."""
    raised = [name for name, on in (("STUCK", row["is_long_finalizing"]),
                                   ("OVERDUE", row["is_overdue"])) if on]  # fmt: skip
    return Text("".join(f" {flag}" for flag in raised), style="bold red")


def when(value: datetime | None, layout: str = "%Y-%m-%d %H:%M") -> str:
    return "-" if value is None else value.strftime(layout)


def rate(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1%}"


def duration(value: float | None) -> str:
    """Durations as people say them: 45s, 12m 05s, 3h 20m, 2d 04h."""
    if value is None:
        return "-"
    seconds = round(value)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3_600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86_400:
        return f"{seconds // 3_600}h {seconds % 3_600 // 60:02d}m"
    return f"{seconds // 86_400}d {seconds % 86_400 // 3_600:02d}h"
