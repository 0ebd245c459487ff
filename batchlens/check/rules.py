"""`batchlens check`'s rules: a snapshot of the views in, findings and a status out.

Pure functions over the rows `snapshot` read, so every rule is tested without a database.
What is stuck, overdue or failing is the views' to say (`open_batches.is_stalled` and
`is_overdue`, `failure_rates`): a rule only names the rows its query selected, or compares
a view's number with a threshold that has no meaning in the views (a rate's maximum, the
hours before expiry). The one clock read is the extraction's age, which is the point of
that rule: when cron stops extracting, "as of" stops moving and only the clock can tell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from batchlens.errors import BatchlensError
from openai_batches.settings import DEFAULT_ACCOUNT

# The monitoring-plugin convention (Nagios, Icinga, Sensu, Zabbix): the exit status is the state.
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
SEVERITIES = {"warning": WARNING, "critical": CRITICAL, "off": None}

# Rule id -> default severity, in the order findings are listed.
RULES: dict[str, str] = {
    # open_batches.is_stalled: longer in its status than the status's stuck_after_hours
    # (statuses: 6 h of finalizing), or than stuck_hours where it overrides that threshold
    "stuck": "critical",
    "overdue": "critical",  # open_batches.is_overdue: still open after its expires_at
    "expiring": "warning",  # open, expires_at within expiring_hours
    "failure_rate": "critical",  # failure_rates' failure_rate of the window's batches
    "request_failure_rate": "warning",  # failure_rates' request_failure_rate of them
    "extract_age": "critical",  # the newest successful extraction is too old: cron is broken
    "error_file_expiring": "warning",  # an undownloaded error file is deleted within a day
    "pending_files": "warning",  # a file's download has kept failing for over a day
    "daily_cost": "warning",  # spend of the current UTC day above the budget
}
# A file whose download has kept failing this long is a finding: every extract asks it
# again, so a day of failures means something other than a poor link.
PENDING_FILE_HOURS = 24
# OpenAI deletes a batch's files 30 days after they are written (the end of the batch).
FILE_RETENTION_HOURS = 30 * 24
FILE_HORIZON_HOURS = 24  # an undownloaded error file within a day of deletion is a finding


@dataclass
class Snapshot:
    """Everything the rules judge, read in one session; lists of plain dicts."""

    as_of: datetime | None
    accounts: list[str]
    open_batches: list[dict[str, Any]]
    active: list[dict[str, Any]]
    rates: dict[float, list[dict[str, Any]]]  # window hours -> one row per account
    last_extractions: dict[str, datetime]
    error_files: list[dict[str, Any]] | None = None  # None: no `batch_files` table
    # None: a ledger from before pending files (no `first_failed_at`)
    pending_files: list[dict[str, Any]] | None = None
    daily_costs: list[dict[str, Any]] | None = None  # None: no `costs_daily` view
    # stuck_hours (None: the statuses' own thresholds) -> the open batches stalled at it
    stalled: dict[float | None, list[dict[str, Any]]] = field(default_factory=lambda: {None: []})
    open_statuses: list[str] = field(default_factory=list)  # `statuses`, lifecycle order


@dataclass(frozen=True)
class Thresholds:
    """One account's rules; None switches a rule off. Minutes for the extraction age.

    `stuck_hours` is the exception: None keeps each status's own threshold
    (`statuses.stuck_after_hours`); a number replaces the threshold of every status that
    has one, and a status without one still never stalls.
    """

    stuck_hours: float | None = None
    expiring_hours: float = 2.0
    max_failure_rate: float | None = None
    max_request_failure_rate: float | None = None
    window_hours: float = 24.0
    min_batches: int = 5
    max_extract_age: float = 60.0
    max_daily_cost: float | None = None
    severity: Mapping[str, str] = field(default_factory=lambda: dict(RULES))


@dataclass(frozen=True)
class Settings:
    """The thresholds of every account: the defaults, and those an account overrides."""

    default: Thresholds = field(default_factory=Thresholds)
    accounts: Mapping[str, Thresholds] = field(default_factory=dict)

    def for_account(self, account: str) -> Thresholds:
        return self.accounts.get(account, self.default)

    def windows(self) -> set[float]:
        """The failure-rate windows (hours) some account uses."""
        return {t.window_hours for t in self.accounts.values()} | {self.default.window_hours}

    def stuck_thresholds(self) -> set[float | None]:
        """The `stuck_hours` some account uses (None: the statuses' own thresholds)."""
        return {t.stuck_hours for t in self.accounts.values()} | {self.default.stuck_hours}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # "warning" | "critical"
    account: str
    message: str
    batch_id: str | None = None
    status: str | None = None
    hours: float | None = None
    value: float | None = None
    threshold: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "account": self.account,
            "batch_id": self.batch_id,
            "status": self.status,
            "hours": None if self.hours is None else round(self.hours, 2),
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
        }


@dataclass
class Outcome:
    """What a check found, and the numbers it found it in (perfdata, Prometheus)."""

    state: int
    findings: list[Finding]
    snapshot: Snapshot
    settings: Settings
    checked_at: datetime
    extract_age_s: dict[str, float | None]  # account -> seconds since its last extraction

    @property
    def state_name(self) -> str:
        return STATES[self.state]


def evaluate(snapshot: Snapshot, settings: Settings, now: datetime) -> Outcome:
    """Every rule for every account; the state is the worst severity found."""
    findings: list[Finding] = []
    ages: dict[str, float | None] = {}
    # a database no extraction ever finished in still has its extraction rule to break
    for account in snapshot.accounts or [DEFAULT_ACCOUNT]:
        limits = settings.for_account(account)
        rows = [row for row in snapshot.open_batches if row["account"] == account]
        findings += _stuck(account, snapshot, limits)
        findings += _expiry(account, rows, limits)
        findings += _rates(account, snapshot, limits)
        last = snapshot.last_extractions.get(account)
        ages[account] = None if last is None else (now - last).total_seconds()
        findings += _extract_age(account, ages[account], limits)
        findings += _error_files(account, snapshot, limits)
        findings += _pending_files(account, snapshot, limits)
        findings += _daily_cost(account, snapshot, limits)
    order = list(RULES)
    findings.sort(key=lambda f: (f.severity != "critical", order.index(f.rule), f.account))
    state = max((SEVERITIES[f.severity] or OK for f in findings), default=OK)
    return Outcome(state, findings, snapshot, settings, now, ages)


def _finding(limits: Thresholds, rule: str, account: str, **fields: Any) -> list[Finding]:
    severity = limits.severity.get(rule, RULES[rule])
    if SEVERITIES[severity] is None:
        return []
    return [Finding(rule=rule, severity=severity, account=account, **fields)]


def _stuck(account: str, snapshot: Snapshot, limits: Thresholds) -> list[Finding]:
    """The account's batches `check/stalled.sql` found stalled at its threshold."""
    if limits.stuck_hours not in snapshot.stalled:
        raise BatchlensError(
            f"the snapshot was read without stuck_hours = {limits.stuck_hours}: pass the "
            "check's settings to read_snapshot"
        )
    found = []
    for row in snapshot.stalled[limits.stuck_hours]:
        if row["account"] != account:
            continue
        hours, threshold = row["hours_in_status"], row["stuck_after_hours"]
        found += _finding(
            limits, "stuck", account,
            batch_id=row["batch_id"], status=row["status"], hours=hours, value=hours,
            threshold=threshold, message=f"{row['status']} for {hours:.1f} h (> {threshold:g} h)",
        )  # fmt: skip
    return found


def _expiry(account: str, rows: list[dict[str, Any]], limits: Thresholds) -> list[Finding]:
    found = []
    for row in rows:
        left = row["hours_to_expiry"]
        if row["is_overdue"]:
            found += _finding(
                limits, "overdue", account,
                batch_id=row["batch_id"], status=row["status"], hours=-left, value=-left,
                message=f"{row['status']}, {-left:.1f} h past expires_at and still open",
            )  # fmt: skip
        elif left is not None and left <= limits.expiring_hours:
            found += _finding(
                limits, "expiring", account,
                batch_id=row["batch_id"], status=row["status"], hours=left, value=left,
                threshold=limits.expiring_hours,
                message=f"{row['status']}, expires in {left:.1f} h "
                f"(within {limits.expiring_hours:g} h)",
            )  # fmt: skip
    return found


def account_rates(snapshot: Snapshot, account: str, window_hours: float) -> dict[str, Any]:
    """The account's row of the window's rates; zeros when it ended nothing in it."""
    for row in snapshot.rates.get(window_hours, []):
        if row["account"] == account:
            return row
    return {"account": account, "terminal": 0, "failed": 0, "request_total": 0,
            "request_failed": 0, "failure_rate": None, "request_failure_rate": None}  # fmt: skip


def _rates(account: str, snapshot: Snapshot, limits: Thresholds) -> list[Finding]:
    row = account_rates(snapshot, account, limits.window_hours)
    if row["terminal"] < limits.min_batches:
        return []  # too few batches ended for a rate to mean anything
    found = []
    window = f"{limits.window_hours:g} h"
    checks = (
        ("failure_rate", limits.max_failure_rate, f"{row['failed']} of {row['terminal']} "
         "batches failed"),
        ("request_failure_rate", limits.max_request_failure_rate,
         f"{row['request_failed']} of {row['request_total']} requests failed"),
    )  # fmt: skip
    for rule, limit, counts in checks:
        rate = row[rule]
        if limit is not None and rate is not None and rate > limit:
            found += _finding(
                limits, rule, account, hours=limits.window_hours, value=rate, threshold=limit,
                message=f"{rule.replace('_', ' ')} {rate:.1%} > {limit:.1%} over {window} "
                f"({counts})",
            )  # fmt: skip
    return found


def _extract_age(account: str, age_s: float | None, limits: Thresholds) -> list[Finding]:
    if age_s is None:
        return _finding(
            limits, "extract_age", account,
            message="no extraction recorded: run `batchlens extract` (from cron)",
        )  # fmt: skip
    minutes = age_s / 60
    if minutes <= limits.max_extract_age:
        return []
    return _finding(
        limits, "extract_age", account, hours=minutes / 60, value=minutes,
        threshold=limits.max_extract_age,
        message=f"the latest extraction is {describe_age(age_s)} old "
        f"(> {limits.max_extract_age:g} min): is the cron job running?",
    )  # fmt: skip


def _error_files(account: str, snapshot: Snapshot, limits: Thresholds) -> list[Finding]:
    found = []
    for row in snapshot.error_files or []:
        if row["account"] == account:
            left = row["hours_to_deletion"]
            found += _finding(
                limits, "error_file_expiring", account,
                batch_id=row["batch_id"], status=row["status"], hours=left, value=left,
                threshold=FILE_HORIZON_HOURS,
                message=f"error file {row['error_file_id']} is deleted in {left:.1f} h "
                "and was never downloaded",
            )  # fmt: skip
    return found


def _pending_files(account: str, snapshot: Snapshot, limits: Thresholds) -> list[Finding]:
    found = []
    for row in snapshot.pending_files or []:
        if row["account"] == account:
            hours = row["hours_pending"]
            found += _finding(
                limits, "pending_files", account,
                batch_id=row["batch_id"], hours=hours, value=hours,
                threshold=PENDING_FILE_HOURS,
                message=f"{row['kind']} file {row['file_id']} has not downloaded for "
                f"{hours:.0f} h ({row['failure_reason']}); every extract asks it again",
            )  # fmt: skip
    return found


def account_cost(snapshot: Snapshot, account: str) -> float | None:
    if snapshot.daily_costs is None:
        return None
    return next(
        (float(row["cost_usd"]) for row in snapshot.daily_costs if row["account"] == account), 0.0
    )


def _daily_cost(account: str, snapshot: Snapshot, limits: Thresholds) -> list[Finding]:
    cost = account_cost(snapshot, account)
    limit = limits.max_daily_cost
    if cost is None or limit is None or cost <= limit:
        return []
    return _finding(
        limits, "daily_cost", account, value=cost, threshold=limit,
        message=f"${cost:,.2f} spent on the current UTC day (> ${limit:,.2f})",
    )  # fmt: skip


def describe_age(seconds: float) -> str:
    """ "7 min", "3 h", "2.5 d": how old, said the way a pager message says it."""
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.1f} d"
