"""What the server backends share: connection settings the dlt way, labels, state folders."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import ClassVar

import dlt
from dlt.common.configuration import configspec
from dlt.common.configuration.specs import ConnectionStringCredentials

from batchlens.errors import UsageError


@configspec(init=False)
class CatalogCredentials(ConnectionStringCredentials):
    """DuckLake's catalog, found under `[destination.ducklake.credentials.catalog]`."""

    __section__: ClassVar[str] = "catalog"
    drivername: str = "postgresql"


def connection_url(key: str, kind: str, spec: ConnectionStringCredentials) -> str:
    """The connection under `key`, resolved by dlt's own credential specs, as a URL.

    A URL or a table of fields, from secrets.toml, config.toml or the environment, the way
    dlt reads it when it loads (`spec`: dlt's spec for the setting, its section last). A
    setting that is missing or cannot be used is a configuration error naming the setting,
    never its value: it may be the password.
    """
    from dlt.common.configuration import resolve_configuration
    from dlt.common.configuration.exceptions import (
        ConfigFieldMissingException,
        ConfigurationException,
        ConfigValueCannotBeCoercedException,
    )

    *sections, _ = key.split(".")
    env = key.upper().replace(".", "__")
    try:
        credentials = resolve_configuration(spec, sections=tuple(sections))
    except ConfigFieldMissingException as exc:
        if dlt.secrets.get(key) is None:
            raise UsageError(
                f"the {kind} destination needs its connection: set {env} or [{key}] "
                "in .dlt/secrets.toml"
            ) from None
        missing = ", ".join(f"`{name}`" for name in exc.fields)
        raise UsageError(
            f"the {kind} destination is missing {missing} of [{key}] (in .dlt/secrets.toml, "
            f"or {env}__{exc.fields[0].upper()}, or in the connection string)"
        ) from None
    except ConfigValueCannotBeCoercedException as exc:
        raise UsageError(
            f"`{exc.field_name}` of [{key}] is not valid for the {kind} destination "
            f"(expected {getattr(exc.hint, '__name__', exc.hint)})"
        ) from None
    except ConfigurationException:
        raise UsageError(
            f"[{key}] is not a connection string such as "
            "postgresql://user:password@host:5432/database, nor a table of its fields"
        ) from None
    return str(credentials.to_native_representation())


def label(url: str) -> str:
    """The server as summaries print it: no password."""
    c = ConnectionStringCredentials(url)
    port = f":{c.port}" if c.port else ""
    return f"postgres://{c.username}@{c.host}{port}/{c.database}"


def state_dir(kind: str, label: str) -> Path:
    """A working folder per server on this machine; the state itself lives in the server."""
    root = Path(os.environ.get("BATCHLENS_STATE_DIR") or "~/.local/state/batchlens")
    digest = hashlib.sha1(label.encode()).hexdigest()[:12]
    return root.expanduser() / f"{kind}-{digest}"
