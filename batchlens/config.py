"""Resolves what to extract from, the dlt way: CLI flags over dlt config over defaults.

dlt reads `.dlt/config.toml` and `.dlt/secrets.toml` in the working directory and env
variables such as `SOURCES__OPENAI_BATCHES__API_KEY`; `OPENAI_API_KEY` is the fallback for
the key because every OpenAI user already has it set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import dlt

from batchlens.errors import UsageError
from openai_batches.settings import DEFAULT_ACCOUNT, DEFAULT_BASE_URL

SECTION = "sources.openai_batches"
# dlt's convention, `<pipeline_name>.duckdb`: a file named after the dataset would hold a
# catalog and a schema both called `openai_batches`, and DuckDB would find
# `openai_batches.open_batches` ambiguous.
DEFAULT_DB = "batchlens.duckdb"
_SECRET_HEADER = re.compile(r"key|auth|token|secret|password|config", re.IGNORECASE)
_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_HEADER = re.compile(r"^\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*:\s*(.*?)\s*$")


@dataclass
class Account:
    """One place to read batches from. Several accounts share one table, keyed by name."""

    name: str
    base_url: str
    api_key: str | None = field(repr=False)
    provider: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    # Which batch files to load (none, errors, all); None: the run's setting.
    requests: str | None = None

    def through_portkey(self) -> bool:
        """Read through the Portkey gateway (a provider or any x-portkey-* header)."""
        return bool(self.provider) or any(
            name.lower().startswith("x-portkey-") for name in self.headers
        )

    def secrets(self) -> list[str]:
        """Values that must never be printed: the key and secret-looking header values."""
        found = [v for k, v in self.headers.items() if _SECRET_HEADER.search(k)]
        return [self.api_key, *found] if self.api_key else found


def _gateway_holds_the_key(headers: dict[str, str]) -> bool:
    """A Portkey config or virtual key carries the provider's key: none needed here."""
    names = {name.lower() for name in headers}
    return bool(names & {"x-portkey-config", "x-portkey-virtual-key"})


def database_path(cli_value: str | None) -> Path:
    """`--db`, else `$BATCHLENS_DB`, else `batchlens.duckdb` in the working directory."""
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
    """A value from any dlt provider (env, secrets.toml, config.toml), None when unset."""
    value = dlt.config.get(f"{SECTION}.{key}")
    return value if value not in ("", None) else None


def _headers(key: str) -> dict[str, str]:
    value = _config(key) or {}
    if not isinstance(value, dict):
        raise UsageError(f"[{SECTION}.{key}] must be a table of header = value")
    return {str(k): str(v) for k, v in value.items()}


def _base_url(value: object) -> str:
    url = str(value or DEFAULT_BASE_URL)
    if not re.match(r"^https?://[^/\s]+", url):
        raise UsageError(f"the base URL must start with http:// or https://, got {url!r}")
    return url


def configured_account_names() -> list[str]:
    """Names under `[sources.openai_batches.accounts.<name>]`, in config.toml or secrets.toml.

    dlt returns a table from the first provider that has it, and an account's settings are
    usually split between config.toml (URL, headers) and secrets.toml (key): ask each.
    """
    names: dict[str, None] = {}
    for provider in dlt.config.config_providers:
        value, _ = provider.get_value("accounts", dict, None, *SECTION.split("."))
        if isinstance(value, dict):
            names.update(dict.fromkeys(str(name) for name in value))
    for name in names:
        if not _ACCOUNT_NAME.match(name):
            raise UsageError(f"account names may use letters, digits, - and _ only: {name!r}")
    return list(names)


def resolve_accounts(
    base_url: str | None = None,
    provider: str | None = None,
    headers: dict[str, str] | None = None,
) -> list[Account]:
    """The configured accounts, or one account from the flags and the top-level settings.

    `--base-url` means "this one place": it overrides the configured accounts. `--provider`
    and `--header` apply to every account.
    """
    names = [] if base_url else configured_account_names()
    if not names:
        return [_top_level_account(base_url, provider, headers)]
    return [_configured_account(name, provider, headers) for name in names]


def _top_level_account(
    base_url: str | None, provider: str | None, headers: dict[str, str] | None
) -> Account:
    api_key = dlt.secrets.get(f"{SECTION}.api_key") or os.environ.get("OPENAI_API_KEY")
    all_headers = {**_headers("headers"), **(headers or {})}
    if not api_key and not _gateway_holds_the_key(all_headers):
        raise UsageError(
            "no API key: set OPENAI_API_KEY, SOURCES__OPENAI_BATCHES__API_KEY, "
            "or api_key under [sources.openai_batches] in .dlt/secrets.toml"
        )
    return Account(
        name=str(_config("account") or DEFAULT_ACCOUNT),
        base_url=_base_url(base_url or _config("base_url")),
        api_key=str(api_key) if api_key else None,
        provider=provider or _config("provider"),
        headers=all_headers,
    )


def _configured_account(name: str, provider: str | None, headers: dict[str, str] | None) -> Account:
    prefix = f"accounts.{name}"
    key_env = _config(f"{prefix}.api_key_env")
    api_key = _config(f"{prefix}.api_key") or (os.environ.get(str(key_env)) if key_env else None)
    all_headers = {**_headers("headers"), **_headers(f"{prefix}.headers"), **(headers or {})}
    if not api_key and not _gateway_holds_the_key(all_headers):
        where = f"the env variable {key_env}" if key_env else f"api_key under [{SECTION}.{prefix}]"
        raise UsageError(f"no API key for account {name!r}: set {where}")
    return Account(
        name=name,
        base_url=_base_url(_config(f"{prefix}.base_url") or _config("base_url")),
        api_key=str(api_key) if api_key else None,
        provider=provider or _config(f"{prefix}.provider") or _config("provider"),
        headers=all_headers,
    )


def apply_requests_mode(accounts: list[Account], cli_value: str | None) -> str:
    """The run's `requests` setting; an account read through the Portkey gateway gets
    `none` unless the setting was given, because the gateway does not proxy file contents
    (it answers 500: README, "Why requests failed") and would fail every run."""
    mode = requests_mode(cli_value)
    if not (cli_value or _config("requests")):
        for account in accounts:
            if account.through_portkey():
                account.requests = "none"
    return mode


def requests_mode(cli_value: str | None) -> str:
    """`--requests`, else `requests` under [sources.openai_batches], else `errors`."""
    from openai_batches.files import DEFAULT_REQUESTS_MODE, REQUESTS_MODES

    value = str(cli_value or _config("requests") or DEFAULT_REQUESTS_MODE)
    if value not in REQUESTS_MODES:
        raise UsageError(
            f"requests must be one of {', '.join(REQUESTS_MODES)} "
            f"(--requests or requests under [{SECTION}]), got {value!r}"
        )
    return value


@dataclass(frozen=True)
class Parallelism:
    """How many requests a run keeps in flight (`[sources.openai_batches]`, env or toml)."""

    retrieve_concurrency: int = 8  # open batches retrieved at once; 1: one after another
    full_segments: int = 4  # segments the list is read in at once; 1: one pass from the top


def parallelism() -> Parallelism:
    values = {}
    for setting in fields(Parallelism):
        name, default = setting.name, setting.default
        value = _config(name)
        try:
            number = default if value is None else int(str(value))
        except ValueError:
            number = 0
        if not 1 <= number <= 64:
            raise UsageError(f"{name} under [{SECTION}] must be a whole number from 1 to 64")
        values[name] = number
    return Parallelism(**values)
