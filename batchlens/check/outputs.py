"""How a check is said: a monitoring-plugin text, one JSON object, or a Prometheus textfile.

The text follows the plugin convention Nagios, Icinga, Sensu and Zabbix read: a first line
`BATCHLENS <STATE> - <summary> | <perfdata>`, then one line per finding. Perfdata is
`label=value[unit];warn;crit;min;max`, where a threshold `0` means "alert above 0". The
Prometheus form is the node_exporter textfile format, written by the official client.
Every form goes to a file atomically (a temporary file in the same folder, then a rename),
so a collector never reads half of one.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from batchlens.check.rules import (
    RULES,
    UNKNOWN,
    Finding,
    Outcome,
    account_cost,
    account_rates,
    describe_age,
)
from batchlens.output import write_atomically

FORMATS = ("text", "json", "prometheus")
# Batch ids and statuses come from the API: nothing in them may break the plugin line.
_UNSAFE = re.compile(r"[^\x20-\x7e]|\|")


def render(outcome: Outcome, fmt: str) -> str:
    if fmt == "json":
        return to_json(outcome)
    if fmt == "prometheus":
        return _exposition(prometheus_registry(outcome))
    return to_text(outcome)


def render_unknown(message: str, fmt: str) -> str:
    """What a check that could not read the database says, in each form."""
    if fmt == "json":
        return json.dumps({"status": "UNKNOWN", "message": message, "findings": [],
                           "perfdata": {}}, indent=2)  # fmt: skip
    if fmt == "prometheus":
        return _exposition(unknown_registry())
    return f"BATCHLENS UNKNOWN - {_safe(message)}\n"


def unknown_registry() -> Any:
    """Only the state: series from an earlier check must not pass for current ones."""
    registry, gauge = _registry()
    gauge("check_status", "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN").set(UNKNOWN)
    return registry


def emit(text: str, registry: Any, output: Path | None) -> None:
    """To stdout, or atomically to `output`: Prometheus through the client's own
    `write_to_textfile` (a temporary file beside it, then a rename), the others likewise."""
    if output is None:
        print(text, end="" if text.endswith("\n") else "\n", flush=True)
    elif registry is not None:
        from prometheus_client import write_to_textfile

        write_to_textfile(str(output), registry)
    else:
        write_atomically(output, text if text.endswith("\n") else text + "\n")


# --- text -----------------------------------------------------------------------------------


def to_text(outcome: Outcome) -> str:
    lines = [
        f"BATCHLENS {outcome.state_name} - {_safe(summary(outcome))} | "
        + " ".join(_perf_item(label, *item) for label, item in perfdata(outcome).items())
    ]
    for finding in outcome.findings:
        where = f"account={finding.account}"
        if finding.batch_id is not None:
            where += f" batch={finding.batch_id} status={finding.status}"
        lines.append(_safe(f"{finding.severity.upper()} {finding.rule} {where}: {finding.message}"))
    return "\n".join(lines) + "\n"


def summary(outcome: Outcome) -> str:
    """One phrase per rule that fired, critical ones first, as a pager shows it."""
    by_rule: dict[str, list[Finding]] = {}
    for finding in outcome.findings:
        by_rule.setdefault(finding.rule, []).append(finding)
    if not by_rule:
        open_count = len(outcome.snapshot.open_batches)
        ages = [age for age in outcome.extract_age_s.values() if age is not None]
        extracted = f", extraction {describe_age(max(ages))} old" if ages else ""
        return f"{_batches(open_count)} open{extracted}, nothing to report"
    return ", ".join(_phrase(rule, found) for rule, found in by_rule.items())


def _phrase(rule: str, found: list[Finding]) -> str:
    thresholds = {f.threshold for f in found}
    limit = thresholds.pop() if len(thresholds) == 1 else None
    accounts = sorted({f.account for f in found})
    named = f" ({', '.join(accounts)})" if len(accounts) > 1 or accounts != ["default"] else ""
    count = len(found)
    if rule == "stuck":
        return f"{_batches(count)} stuck" + (f" > {limit:g} h" if limit is not None else "")
    if rule == "overdue":
        return f"{_batches(count)} past expires_at"
    if rule == "expiring":
        return f"{_batches(count)} expiring" + (f" within {limit:g} h" if limit is not None else "")
    if rule in ("failure_rate", "request_failure_rate"):
        rate = max(f.value or 0.0 for f in found)
        return f"{rule.replace('_', ' ')} {rate:.0%}" + named
    if rule == "extract_age":
        ages = [f.value for f in found if f.value is not None]
        if not ages:
            return "no extraction recorded" + named
        return f"extraction {describe_age(max(ages) * 60)} old" + named
    if rule == "error_file_expiring":
        return f"{count} undownloaded error file{'s' * (count != 1)} deleted within a day"
    if rule == "pending_files":
        return f"{count} file{'s' * (count != 1)} pending for over a day"
    return f"${sum(f.value or 0.0 for f in found):,.2f} spent today" + named


def _batches(count: int) -> str:
    return f"{count} batch{'es' * (count != 1)}"


def perfdata(outcome: Outcome) -> dict[str, tuple[Any, str, str, str, str]]:
    """label -> (value, unit, warn, crit, min); rates and ages take the worst account."""
    counts = Counter(f.rule for f in outcome.findings)
    default = outcome.settings.default
    snapshot = outcome.snapshot

    def alert_above(rule: str, limit: float | None) -> tuple[str, str]:
        level = default.severity.get(rule, RULES[rule])
        value = "" if limit is None or level == "off" else f"{limit:g}"
        return (value, "") if level == "warning" else ("", value)

    def worst(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return max(known) if known else None

    accounts = snapshot.accounts
    window = default.window_hours
    rates = [account_rates(snapshot, a, window) for a in accounts]
    items: dict[str, tuple[Any, str, str, str, str]] = {
        "open": (len(snapshot.open_batches), "", "", "", "0"),
        "stuck": (counts["stuck"], "", *alert_above("stuck", 0), "0"),
        "overdue": (counts["overdue"], "", *alert_above("overdue", 0), "0"),
        "expiring": (counts["expiring"], "", *alert_above("expiring", 0), "0"),
        "failure_rate": (
            worst([r["failure_rate"] for r in rates]), "",
            *alert_above("failure_rate", default.max_failure_rate), "0",
        ),
        "request_failure_rate": (
            worst([r["request_failure_rate"] for r in rates]), "",
            *alert_above("request_failure_rate", default.max_request_failure_rate), "0",
        ),
        "extract_age": (
            worst(list(outcome.extract_age_s.values())), "s",
            *alert_above("extract_age", default.max_extract_age * 60), "0",
        ),
    }  # fmt: skip
    if snapshot.error_files is not None:
        items["error_files_expiring"] = (
            counts["error_file_expiring"],
            "",
            *alert_above("error_file_expiring", 0),
            "0",
        )
    if snapshot.daily_costs is not None:
        items["daily_cost"] = (
            sum(account_cost(snapshot, a) or 0.0 for a in accounts), "",
            *alert_above("daily_cost", default.max_daily_cost), "0",
        )  # fmt: skip
    return items


def _perf_item(label: str, value: Any, unit: str, warn: str, crit: str, low: str) -> str:
    if value is None:
        shown = "U"  # the plugin guidelines' "could not be determined"
    elif isinstance(value, int):
        shown = str(value)
    else:
        shown = f"{value:.6g}" if unit != "s" else f"{value:.0f}"
    return f"{label}={shown}{unit if value is not None else ''};{warn};{crit};{low};"


def _safe(text: str) -> str:
    return _UNSAFE.sub("?", text)


# --- JSON -----------------------------------------------------------------------------------


def to_json(outcome: Outcome) -> str:
    return json.dumps(
        {
            "status": outcome.state_name,
            "as_of": _iso(outcome.snapshot.as_of),
            "checked_at": _iso(outcome.checked_at),
            "findings": [finding.as_dict() for finding in outcome.findings],
            "perfdata": {label: item[0] for label, item in perfdata(outcome).items()},
        },
        indent=2,
        allow_nan=False,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# --- Prometheus -----------------------------------------------------------------------------


def _registry() -> tuple[Any, Any]:
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(f"batchlens_{name}", documentation, labels, registry=registry)

    return registry, gauge


def _exposition(registry: Any) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()


def prometheus_registry(outcome: Outcome) -> Any:
    snapshot = outcome.snapshot
    registry, gauge = _registry()
    gauge("check_status", "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN").set(outcome.state)
    if snapshot.as_of is not None:
        gauge("as_of_timestamp_seconds", "start of the latest extraction: the views' now").set(
            snapshot.as_of.timestamp()
        )
    open_batches = gauge("open_batches", "open batches", ("account", "status"))
    oldest = gauge(
        "oldest_open_batch_age_seconds",
        "age of the oldest open batch in the status, as of the latest extraction",
        ("account", "status"),
    )
    for row in snapshot.active:
        open_batches.labels(row["account"], row["status"]).set(row["batches"])
        if row["batches"] and row["oldest_age_s"] is not None:
            oldest.labels(row["account"], row["status"]).set(row["oldest_age_s"])
    stuck = gauge(
        "stuck_batches",
        "open batches stalled in their status (open_batches.is_stalled; stuck_hours overrides "
        "the statuses' thresholds)",
        ("account", "status"),
    )
    stuck_counts = Counter((f.account, f.status) for f in outcome.findings if f.rule == "stuck")
    for account in snapshot.accounts:
        for status in snapshot.open_statuses:
            stuck.labels(account, status).set(stuck_counts[(account, status)])

    terminal = gauge("window_terminal_batches", "terminal batches created in the window",
                     ("account", "window"))  # fmt: skip
    failure = gauge("failure_rate", "failed / terminal batches created in the window",
                    ("account", "window"))  # fmt: skip
    request_failure = gauge("request_failure_rate", "failed / all requests of those batches",
                            ("account", "window"))  # fmt: skip
    extracted = gauge("last_extraction_timestamp_seconds", "start of the newest successful "
                      "extraction", ("account",))  # fmt: skip
    for account in snapshot.accounts:
        hours = outcome.settings.for_account(account).window_hours
        window = f"{hours:g}h"
        row = account_rates(snapshot, account, hours)
        terminal.labels(account, window).set(row["terminal"])
        for metric, key in ((failure, "failure_rate"), (request_failure, "request_failure_rate")):
            if row[key] is not None:  # no terminal batch: no rate, not 0
                metric.labels(account, window).set(row[key])
        last = snapshot.last_extractions.get(account)
        if last is not None:
            extracted.labels(account).set(last.timestamp())

    findings = gauge("check_findings", "findings of the check", ("rule", "severity"))
    found = Counter((f.rule, f.severity) for f in outcome.findings)
    for rule in RULES:
        for severity in ("warning", "critical"):
            findings.labels(rule, severity).set(found[(rule, severity)])

    if snapshot.error_files is not None:
        files = gauge("error_files_expiring", "undownloaded error files deleted within a day",
                      ("account",))  # fmt: skip
        for account in snapshot.accounts:
            files.labels(account).set(
                sum(1 for f in outcome.findings
                    if f.rule == "error_file_expiring" and f.account == account)
            )  # fmt: skip
    if snapshot.daily_costs is not None:
        cost = gauge("daily_cost_usd", "spend of the current UTC day (of the latest extraction)",
                     ("account",))  # fmt: skip
        for account in snapshot.accounts:
            cost.labels(account).set(account_cost(snapshot, account) or 0.0)
    return registry
