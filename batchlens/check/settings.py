"""`check`'s thresholds, the dlt way: flags win, then `[check.accounts.<name>]`, then
`[check]` (in `.dlt/config.toml` or as env `CHECK__STUCK_HOURS`, ...), then the defaults.

A threshold that makes no sense (a negative number of hours, a rate above 1, an unknown
rule or severity) is a bad option: the check answers UNKNOWN rather than guess.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

import dlt

from batchlens.check.rules import RULES, SEVERITIES, Settings, Thresholds
from batchlens.errors import UsageError

SECTION = "check"


def _positive(value: float) -> bool:
    return value > 0


def _rate(value: float) -> bool:
    return 0 <= value <= 1


def _not_negative(value: float) -> bool:
    return value >= 0


# key -> (type, valid?, what a valid value is). Unset, `stuck_hours` keeps each status's own
# threshold (`statuses.stuck_after_hours`); set, it replaces the threshold of every status
# that has one (check/stalled.sql), and a status without one still never stalls.
KEYS: dict[str, tuple[type, Callable[[Any], bool], str]] = {
    "stuck_hours": (float, _positive, "a number of hours > 0"),
    "expiring_hours": (float, _not_negative, "a number of hours >= 0"),
    "max_failure_rate": (float, _rate, "a rate between 0 and 1"),
    "max_request_failure_rate": (float, _rate, "a rate between 0 and 1"),
    "window_hours": (float, _positive, "a number of hours > 0"),
    "min_batches": (int, _positive, "a whole number >= 1"),
    "max_extract_age": (float, _positive, "a number of minutes > 0"),
    "max_daily_cost": (float, _not_negative, "an amount of USD >= 0"),
}
assert set(KEYS) == {f.name for f in fields(Thresholds)} - {"severity"}


def resolve_settings(flags: Mapping[str, Any], severity_flags: list[str] | None) -> Settings:
    """`flags`: the command line's values by key (None when not given)."""
    from_flags = severities(severity_flags or [], "--severity")
    default = _thresholds([SECTION], flags, from_flags)
    accounts = {
        name: _thresholds([f"{SECTION}.accounts.{name}", SECTION], flags, from_flags)
        for name in configured_accounts()
    }
    return Settings(default=default, accounts=accounts)


def _thresholds(
    sections: list[str], flags: Mapping[str, Any], severity_flags: dict[str, str]
) -> Thresholds:
    values: dict[str, Any] = {}
    for key in KEYS:
        if flags.get(key) is not None:
            values[key] = _valid(key, flags[key], f"--{key.replace('_', '-')}")
            continue
        for section in sections:
            configured = dlt.config.get(f"{section}.{key}")
            if configured not in (None, ""):
                values[key] = _valid(key, configured, f"{key} in [{section}]")
                break
    severity = dict(RULES)
    for section in reversed(sections):  # the account's table over [check.severity]
        table = dlt.config.get(f"{section}.severity")
        if table is not None:
            if not isinstance(table, Mapping):
                raise UsageError(f"[{section}.severity] must be a table of rule = severity")
            severity.update(severities(table.items(), f"[{section}.severity]"))
    severity.update(severity_flags)
    return Thresholds(**values, severity=severity)


def _valid(key: str, value: Any, where: str) -> float | int:
    kind, ok, meaning = KEYS[key]
    try:
        number = kind(value)
        if isinstance(value, bool) or (kind is int and number != float(value)):
            raise ValueError
    except (TypeError, ValueError):
        raise UsageError(f"{where} must be {meaning}, got {value!r}") from None
    if not math.isfinite(number) or not ok(number):
        raise UsageError(f"{where} must be {meaning}, got {value!r}")
    return number


def severities(pairs: Any, where: str) -> dict[str, str]:
    """`rule=severity` strings (flags) or (rule, severity) pairs (a config table)."""
    found = {}
    for pair in pairs:
        if isinstance(pair, str):
            rule, _, level = pair.partition("=")
        else:
            rule, level = pair
        rule, level = str(rule).strip(), str(level).strip().lower()
        if rule not in RULES:
            raise UsageError(f"{where}: unknown rule {rule!r}; rules: {', '.join(RULES)}")
        if level not in SEVERITIES:
            raise UsageError(
                f"{where}: severity of {rule} must be one of {', '.join(SEVERITIES)}, got {level!r}"
            )
        found[rule] = level
    return found


def configured_accounts() -> list[str]:
    """Names under `[check.accounts.<name>]`, from every dlt provider (config, secrets, env)."""
    names: dict[str, None] = {}
    for provider in dlt.config.config_providers:
        value, _ = provider.get_value("accounts", dict, None, SECTION)
        if isinstance(value, dict):
            names.update(dict.fromkeys(str(name) for name in value))
    return list(names)
