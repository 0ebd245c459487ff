"""The `batchlens` command: made for cron, with one summary line and clear exit codes.

Exit codes: 0 success; 1 failure after retries or an answer that is not a valid list page;
2 usage or configuration error; 3 another process holds the database; 4 the API refused the
credentials or the URL (401/403/404); 5 `extract` loaded, but the views could not be rebuilt
on the load (kept); 141 stdout's reader went away (`| head`), as for a process ended by
SIGPIPE.
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

from . import __version__, errors
from .destinations import KINDS
from .errors import Redactor

EPILOG = (
    "exit codes: 0 ok, 1 failed after retries or invalid answer, 2 usage/configuration, "
    "3 database held by another process, 4 API refused credentials or URL (401/403/404), "
    "5 loaded but the views were not rebuilt, 141 output pipe closed by its reader (| head)"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchlens",
        description="Keep the complete history of your OpenAI Batch API jobs in DuckDB.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    db_help = "DuckDB file (default: $BATCHLENS_DB, else openai_batches.duckdb)"

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
    report.add_argument(
        "--by",
        metavar="metadata.KEY",
        help="add a section: the window's batches grouped by one metadata label "
        "(metadata.owner, metadata.project, ...)",
    )

    from .simulator.server import DEFAULT_API_KEY

    simulate = commands.add_parser(
        "simulate",
        help="serve a simulated Batch API on 127.0.0.1",
        epilog=f"The simulator accepts one API key: {DEFAULT_API_KEY} (it is not a secret). "
        f"Example: OPENAI_API_KEY={DEFAULT_API_KEY} batchlens extract --base-url "
        "http://127.0.0.1:PORT/v1",
    )
    simulate.add_argument("--port", type=int, default=0, help="0 picks a free port")
    simulate.add_argument("--batches", type=int, default=500)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument(
        "--now",
        type=_instant,
        help="the simulated clock at start, ISO 8601 (2026-01-01T00:00:00Z) or epoch "
        "seconds (default: the real time now); the history is the days before it",
    )

    demo = commands.add_parser(
        "demo",
        help="simulator -> extract -> models -> report",
        epilog="The demo starts from scratch: it creates --db, or replaces it only when an "
        "earlier demo created it. Any other file is refused (exit 2) and left untouched.",
    )
    demo.add_argument(
        "--db",
        default="demo.duckdb",
        help="DuckDB file (default demo.duckdb); must not exist or be an earlier demo's",
    )
    demo.add_argument("--batches", type=int, default=2000)
    return parser


def _instant(text: str) -> int:
    """`--now`: epoch seconds or ISO 8601 (UTC unless it says otherwise)."""
    from datetime import UTC, datetime

    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time or epoch seconds: {text!r}"
        ) from None
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


def _target(args: argparse.Namespace, redact: Redactor) -> Any:
    """Where the command works (`--destination`, `--db`), its password redacted."""
    from .destinations import resolve_target

    target = resolve_target(args.destination, args.db)
    for secret in target.secrets():
        redact.add(secret)
    return target


def _extract(args: argparse.Namespace, redact: Redactor) -> int:
    from .config import parse_headers, resolve_accounts
    from .extract import Progress, ViewsNotBuiltError, extract_accounts

    target = _target(args, redact)
    accounts = resolve_accounts(args.base_url, args.provider, parse_headers(args.header))
    for account in accounts:
        for secret in account.secrets():
            redact.add(secret)
    several = len(accounts) > 1
    views_error = None
    try:
        runs = extract_accounts(
            target, accounts, full=args.full, progress=Progress(), isolate=several
        )
    except ViewsNotBuiltError as exc:  # loaded: the summaries first, then what went wrong
        runs, views_error = exc.runs, exc
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
    if views_error is not None:
        print(redact(f"batchlens: {views_error}"), file=sys.stderr)
        exit_code = exit_code or views_error.exit_code
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
    from .report import collect, collect_from, show

    if args.days < 1:
        raise errors.UsageError("--days must be at least 1")
    target = _target(args, redact)
    if target.db is not None:
        data = collect(target.db, args.days, args.by)
    else:
        with contextlib.closing(target.connect(read_only=True)) as connection:
            data = collect_from(connection, target.dialect, args.days, target.label, args.by)
    show(data, args.format)
    return errors.OK


def _simulate(args: argparse.Namespace, redact: Redactor) -> int:
    import time

    from .simulator.server import serve_forever

    now = int(time.time()) if args.now is None else args.now
    serve_forever(port=args.port, batches=args.batches, seed=args.seed, now=now)
    return errors.OK


def _demo(args: argparse.Namespace, redact: Redactor) -> int:
    from .demo import run_demo

    return run_demo(Path(args.db).absolute(), batches=args.batches)


COMMANDS = {
    "extract": _extract,
    "models": _models,
    "report": _report,
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
        code = COMMANDS[args.command](args, redact)
        sys.stdout.flush()  # here, not at exit, so that a reader gone away is caught below
        return code
    except BrokenPipeError:
        return _reader_gone()
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


def _reader_gone() -> int:
    """stdout's reader went away (`| head`): stop without a word, as a Unix tool does.

    Python flushes stdout once more at exit; pointing it at /dev/null keeps that flush
    from failing again with "Exception ignored ... BrokenPipeError".
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return errors.BROKEN_PIPE


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
