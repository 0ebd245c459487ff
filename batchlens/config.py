"""Resolves what to extract from, the dlt way: CLI flags over dlt config over defaults.

dlt reads `.dlt/config.toml` and `.dlt/secrets.toml` in the working directory and env
variables such as `SOURCES__OPENAI_BATCHES__API_KEY`; `OPENAI_API_KEY` is the fallback for
the key because every OpenAI user already has it set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import dlt

from openai_batches.settings import DEFAULT_ACCOUNT, DEFAULT_BASE_URL

from .errors import UsageError

SECTION = "sources.openai_batches"
DEFAULT_DB = "openai_batches.duckdb"
_SECRET_HEADER = re.compile(r"key|auth|token|secret|password|config", re.IGNORECASE)
_HEADER = re.compile(r"^\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*:\s*(.*?)\s*$")


@dataclass
class Account:
    """One place to read batches from. Several accounts share one table, keyed by name."""

    name: str
    base_url: str
    api_key: str = field(repr=False)
    provider: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    def secrets(self) -> list[str]:
        """Values that must never be printed: the key and secret-looking header values."""
        found = [self.api_key]
        found += [v for k, v in self.headers.items() if _SECRET_HEADER.search(k)]
        return found


def database_path(cli_value: str | None) -> Path:
    """`--db`, else `$BATCHLENS_DB`, else `openai_batches.duckdb` in the working directory."""
    return Path(cli_value or os.environ.get("BATCHLENS_DB") or DEFAULT_DB).expanduser().absolute()


def parse_headers(values: list[str] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values or []:
        match = _HEADER.match(value)
        if not match:
            name = value.split(":", 1)[0].strip() or "(empty)"
            raise UsageError(f"--header must look like 'Name: value', got one named {name!r}")
        headers[match[1]] = match[2]
    return headers


def _config(key: str) -> object:
    value = dlt.config.get(f"{SECTION}.{key}")
    return value if value not in ("", None) else None


def resolve_account(
    base_url: str | None = None,
    provider: str | None = None,
    headers: dict[str, str] | None = None,
) -> Account:
    api_key = dlt.secrets.get(f"{SECTION}.api_key") or os.environ.get("OPENAI_API_KEY")
    if not api_key:
        raise UsageError(
            "no API key: set OPENAI_API_KEY, SOURCES__OPENAI_BATCHES__API_KEY, "
            "or api_key under [sources.openai_batches] in .dlt/secrets.toml"
        )
    configured_headers = dlt.secrets.get(f"{SECTION}.headers") or {}
    if not isinstance(configured_headers, dict):
        raise UsageError("[sources.openai_batches] headers must be a table of name = value")
    url = base_url or _config("base_url") or DEFAULT_BASE_URL
    if not re.match(r"^https?://[^/\s]+", str(url)):
        raise UsageError(f"the base URL must start with http:// or https://, got {url!r}")
    return Account(
        name=str(_config("account") or DEFAULT_ACCOUNT),
        base_url=str(url),
        api_key=str(api_key),
        provider=provider or _config("provider"),
        headers={**{str(k): str(v) for k, v in configured_headers.items()}, **(headers or {})},
    )
