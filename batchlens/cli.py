"""The `batchlens` command: made for cron, with one summary line and clear exit codes.

Exit codes: 0 success; 1 failure after retries or an answer that is not a valid list page;
2 usage or configuration error; 3 another process holds the database; 4 the API refused the
credentials or the URL (401/403/404).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Before dlt is imported anywhere: its telemetry phones home by default.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

from . import errors
from .destinations import KINDS
from .errors import Redactor

EPILOG = (
    "exit codes: 0 ok, 1 failed after retries or invalid answer, 2 usage/configuration, "
    "3 database held by another process, 4 API refused credentials or URL (401/403/404)"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchlens",
        description="Keep the complete history of your OpenAI Batch API jobs in DuckDB.",
        epilog=EPILOG,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    db_help = "DuckDB file (default: $BATCHLENS_DB, else batchlens.duckdb)"

    destination_help = (
        "duckdb (default), postgres or ducklake; the connection comes from "
        "[destination.<name>.credentials] the dlt way, never from a flag"
    )
    extract = commands.add_parser(
        "extract", help="load new and still-open batches, then build the models", epilog=EPILOG
    )
    extract.add_argument("--db", help=db_help)
    extract.add_argument("--destination", choices=KINDS, help=destination_help)
    extract.add_argument("--base-url", help="API base URL (default https://api.openai.com/v1)")
    extract.add_argument("--provider", help="send x-portkey-provider: NAME (Portkey gateway)")
    extract.add_argument(
        "--header",
        action="append",
        metavar="'Name: value'",
        help="extra request header, repeatable (x-portkey-config, OpenAI-Project, ...)",
    )
    extract.add_argument(
        "--full", action="store_true", help="re-read every page and merge (weekly reconcile)"
    )

    models = commands.add_parser("models", help="(re)build the SQL views", epilog=EPILOG)
    models.add_argument("--db", help=db_help)
    models.add_argument("--destination", choices=KINDS, help=destination_help)

    report = commands.add_parser("report", help="print the report from the views", epilog=EPILOG)
    report.add_argument("--db", help=db_help)
    report.add_argument("--destination", choices=KINDS, help=destination_help)
    report.add_argument("--format", choices=("table", "json"), default="table")
    report.add_argument("--days", type=int, default=30, help="window for durations and errors")

    sql = commands.add_parser(
        "sql", help="run read-only SQL against the tables and views", epilog=EPILOG
    )
    sql.add_argument("query", help='e.g. "select * from openai_batches.open_batches"')
    sql.add_argument("--db", help=db_help)
    sql.add_argument("--destination", choices=KINDS, help=destination_help)
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")

    notebooks = commands.add_parser(
        "notebooks", help="copy the Jupyter notebooks into a folder", epilog=EPILOG
    )
    notebooks.add_argument("folder", metavar="DIR", help="created if missing")
    notebooks.add_argument(
        "--force", action="store_true", help="overwrite notebooks that differ from batchlens'"
    )

    simulate = commands.add_parser("simulate", help="serve a simulated Batch API on 127.0.0.1")
    simulate.add_argument("--port", type=int, default=0, help="0 picks a free port")
    simulate.add_argument("--batches", type=int, default=500)
    simulate.add_argument("--seed", type=int, default=7)

    demo = commands.add_parser("demo", help="simulator -> extract -> models -> report")
    demo.add_argument("--db", default="demo.duckdb", help="DuckDB file (default demo.duckdb)")
    demo.add_argument("--batches", type=int, default=2000)
    return parser


def _target(args: argparse.Namespace, redact: Redactor) -> Any:
    """Where the command works (`--destination`, `--db`), its password redacted."""
    from .destinations import resolve_target

    target = resolve_target(args.destination, args.db)
    for secret in target.secrets():
        redact.add(secret)
    return target


def _extract(args: argparse.Namespace, redact: Redactor) -> int:
    from .config import parse_headers, resolve_accounts
    from .extract import Progress, extract_accounts

    target = _target(args, redact)
    accounts = resolve_accounts(args.base_url, args.provider, parse_headers(args.header))
    for account in accounts:
        for secret in account.secrets():
            redact.add(secret)
    several = len(accounts) > 1
    runs = extract_accounts(target, accounts, full=args.full, progress=Progress(), isolate=several)
    db = target.label
    exit_code = errors.OK
    for run in runs:
        if run.summary is not None:
            print(run.summary.line(db, run.account if several else None), flush=True)
            continue
        code, message = errors.classify(run.error) or (errors.FAILED, str(run.error))
        exit_code = exit_code or code  # the first failing account's code
        print(f"batchlens extract: account={run.account} failed exit={code}", flush=True)
        print(redact(f"batchlens: account {run.account}: {message}"), file=sys.stderr)
    return exit_code


def _models(args: argparse.Namespace, redact: Redactor) -> int:
    from .models import build_models

    target = _target(args, redact)
    if target.db is not None:  # a missing file is refused by build_models (exit 2)
        views = build_models(target.db)
    else:
        with target.lock(), contextlib.closing(target.connect()) as connection:
            views = build_models(connection, dialect=target.dialect)
    print(f"batchlens models: built {len(views)} views in {target.label}")
    return errors.OK


def _report(args: argparse.Namespace, redact: Redactor) -> int:
    from .report import report, report_from

    if args.days < 1:
        raise errors.UsageError("--days must be at least 1")
    target = _target(args, redact)
    if target.db is not None:
        print(report(target.db, fmt=args.format, days=args.days))
    else:
        with contextlib.closing(target.connect(read_only=True)) as connection:
            print(report_from(connection, target.dialect, target.label, args.format, args.days))
    return errors.OK


def _sql(args: argparse.Namespace, redact: Redactor) -> int:
    from .query import render, run_query

    names, found = run_query(_target(args, redact), args.query)
    if names:
        print(render(names, found, args.format))
    return errors.OK


def _notebooks(args: argparse.Namespace, redact: Redactor) -> int:
    from .notebooks_export import export

    folder = Path(args.folder).expanduser().absolute()
    for path, what in export(folder, force=args.force):
        print(f"batchlens notebooks: {what} {path}")
    print(
        f"batchlens notebooks: open them with `jupyter lab {args.folder}` "
        "(pip install 'batchlens[notebooks]'); they read $BATCHLENS_DB, else the nearest "
        "batchlens.duckdb or demo.duckdb in the notebook's folder or up to two above it"
    )
    return errors.OK


def _simulate(args: argparse.Namespace, redact: Redactor) -> int:
    from .simulator.server import serve_forever

    serve_forever(port=args.port, batches=args.batches, seed=args.seed)
    return errors.OK


def _demo(args: argparse.Namespace, redact: Redactor) -> int:
    from .demo import run_demo

    return run_demo(Path(args.db).absolute(), batches=args.batches)


COMMANDS = {
    "extract": _extract,
    "models": _models,
    "report": _report,
    "sql": _sql,
    "notebooks": _notebooks,
    "simulate": _simulate,
    "demo": _demo,
}


def _log_warnings_to_stderr() -> None:
    """The loader's warnings (an unknown status word, ...) as one `batchlens:` line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("batchlens: warning: %(message)s"))
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("batchlens")
    logger.addHandler(handler)
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    redact = Redactor()
    _log_warnings_to_stderr()
    # cron and `timeout` send SIGTERM: unwind like Ctrl-C so nothing is half-written.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return COMMANDS[args.command](args, redact)
    except KeyboardInterrupt:
        print(
            "batchlens: interrupted; the next run completes or discards what this one left",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # every failure ends in one line, known ones with their code
        known = errors.classify(exc)
        if known is None:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            print(
                redact(f"batchlens: unexpected error: {type(exc).__name__}: {first}"),
                file=sys.stderr,
            )
            if os.environ.get("BATCHLENS_DEBUG"):
                raise
            return errors.FAILED
        code, message = known
        print(redact(f"batchlens: {message}"), file=sys.stderr)
        return code


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
