"""The `batchlens` command: made for cron, with one summary line and clear exit codes.

Exit codes: 0 success; 1 failure after retries or an answer that is not a valid list page;
2 usage or configuration error; 3 another process holds the database; 4 the API refused the
credentials or the URL (401/403/404); 5 `extract` loaded, but the views could not be rebuilt
on the load (kept); 6 `extract` loaded, but N files could not be downloaded (the next run
fetches them); 130 interrupted (SIGINT, SIGTERM); 141 stdout's reader went away (`| head`),
as for a process ended by SIGPIPE. `check` alone follows the monitoring-plugin convention
instead: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Before dlt is imported anywhere: its telemetry phones home by default.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

from batchlens import __version__, errors
from batchlens.errors import Redactor
from batchlens.storage import KINDS, READ_WAIT_SECONDS

CHECK_UNKNOWN = 3  # `check`'s own convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
EPILOG = (
    "exit codes: 0 ok, 1 failed after retries or invalid answer, 2 usage/configuration, "
    "3 database held by another process, 4 API refused credentials or URL (401/403/404), "
    "5 loaded but the views were not rebuilt, 6 loaded but N files could not be downloaded "
    "(the next run fetches them), 130 interrupted (SIGINT, SIGTERM), "
    "141 output pipe closed by its reader (| head)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchlens",
        description="Keep the complete history of your OpenAI Batch API jobs in DuckDB.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    db_help = "DuckDB file (default: $BATCHLENS_DB, else batchlens.duckdb)"

    prices_help = (
        "CSV of prices that win over genai-prices' (model,input_mtok,cached_input_mtok,"
        "output_mtok; default: $BATCHLENS_PRICES, else prices under [sources.openai_batches])"
    )
    destination_help = (
        "duckdb (default), postgres or ducklake; the connection comes from "
        "[destination.<name>.credentials] the dlt way, never from a flag"
    )

    def wait_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--wait",
            type=float,
            default=READ_WAIT_SECONDS,
            metavar="SECONDS",
            help="wait this long for an extraction writing a DuckDB file to end "
            f"(default {READ_WAIT_SECONDS:g})",
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
    extract.add_argument(
        "--html", metavar="PATH", help="rewrite this HTML report page after a successful run"
    )
    extract.add_argument("--prices", metavar="PATH", help=prices_help)
    extract.add_argument(
        "--requests",
        choices=("errors", "all", "none"),
        help="load terminal batches' error files (default), error and output files, or none",
    )

    models = commands.add_parser("models", help="(re)build the SQL views", epilog=EPILOG)
    models.add_argument("--db", help=db_help)
    models.add_argument("--destination", choices=KINDS, help=destination_help)
    models.add_argument("--prices", metavar="PATH", help=prices_help)

    report = commands.add_parser("report", help="print the report from the views", epilog=EPILOG)
    report.add_argument("--db", help=db_help)
    report.add_argument("--destination", choices=KINDS, help=destination_help)
    report.add_argument(
        "--format",
        choices=("table", "json", "html"),
        default="table",
        help="tables that fit the terminal (default), one JSON document, or the HTML page",
    )
    report.add_argument("--output", metavar="PATH", help="write to this file (atomically)")
    report.add_argument("--days", type=int, default=30, help="window for durations and errors")
    report.add_argument(
        "--by",
        metavar="metadata.KEY",
        help="add a section: the window's batches grouped by one metadata label "
        "(metadata.owner, metadata.project, ...)",
    )
    report.add_argument("--prices", metavar="PATH", help=prices_help)
    wait_option(report)

    prices = commands.add_parser(
        "prices", help="the price of every model in the history, and the unpriced", epilog=EPILOG
    )
    prices.add_argument("--db", help=db_help)
    prices.add_argument("--destination", choices=KINDS, help=destination_help)
    prices.add_argument("--prices", metavar="PATH", help=prices_help)
    wait_option(prices)

    failed = commands.add_parser(
        "failed-requests",
        help="one batch's failed requests (custom_id, code, message) from its error file",
        epilog=EPILOG,
    )
    failed.add_argument("batch_id", metavar="BATCH_ID", help="the batch, e.g. batch_abc123")
    failed.add_argument("--db", help=db_help)
    failed.add_argument("--destination", choices=KINDS, help=destination_help)
    failed.add_argument(
        "--format",
        choices=("csv", "jsonl"),
        default="csv",
        help="CSV with a header (default) or one JSON object per line",
    )
    wait_option(failed)

    sql = commands.add_parser(
        "sql", help="run read-only SQL against the tables and views", epilog=EPILOG
    )
    sql.add_argument("query", help='e.g. "select * from openai_batches.open_batches"')
    sql.add_argument("--db", help=db_help)
    sql.add_argument("--destination", choices=KINDS, help=destination_help)
    sql.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="a table (default), CSV with a header, or a JSON array of objects",
    )
    wait_option(sql)

    notebooks = commands.add_parser(
        "notebooks", help="copy the Jupyter notebooks into a folder", epilog=EPILOG
    )
    notebooks.add_argument("folder", metavar="DIR", help="created if missing")
    notebooks.add_argument(
        "--force", action="store_true", help="overwrite notebooks that differ from batchlens'"
    )

    from batchlens.simulator.server import DEFAULT_API_KEY

    simulate = commands.add_parser(
        "simulate",
        help="serve a simulated Batch API on 127.0.0.1",
        epilog=f"The simulator accepts one API key: {DEFAULT_API_KEY} (it is not a secret). "
        f"Example: OPENAI_API_KEY={DEFAULT_API_KEY} batchlens extract --base-url "
        "http://127.0.0.1:PORT/v1",
    )
    simulate.add_argument("--port", type=int, default=0, help="0 picks a free port")
    simulate.add_argument(
        "--batches",
        type=int,
        default=500,
        metavar="N",
        help="batches in the simulated history, over the 60 days before --now (default 500)",
    )
    simulate.add_argument(
        "--seed",
        type=int,
        default=7,
        metavar="N",
        help="seed of the random history: the same seed and --now give the same batches "
        "(default 7)",
    )
    simulate.add_argument(
        "--latency",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="every API answer waits this long, like a distant API's round trip (default 0; "
        "POST /_sim/latency?seconds=S changes it while it runs)",
    )
    simulate.add_argument(
        "--now",
        type=_instant,
        help="the simulated clock at start, ISO 8601 (2026-01-01T00:00:00Z) or epoch "
        "seconds (default: the real time now); the history is the days before it",
    )

    _check_parser(commands, db_help, destination_help)

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
    demo.add_argument(
        "--batches",
        type=int,
        default=2000,
        metavar="N",
        help="batches in the simulated history (default 2000)",
    )
    return parser


CHECK_EPILOG = (
    "exit codes (the monitoring-plugin convention, unlike the other commands): 0 OK, "
    "1 WARNING, 2 CRITICAL, 3 UNKNOWN (database missing or unreadable, held by an extraction "
    "longer than --wait, bad option). Default severities: stuck, overdue, failure_rate, "
    "extract_age critical; expiring, request_failure_rate, error_file_expiring, pending_files, "
    "daily_cost "
    "warning. Thresholds also come from [check] and [check.accounts.NAME] in "
    ".dlt/config.toml; flags win."
)


def _check_parser(commands: Any, db_help: str, destination_help: str) -> None:
    check = commands.add_parser(
        "check",
        help="alert on stuck, expiring or failing batches and a stale extraction (exit 0-3)",
        description="Reads the views (never the API) and reports like a monitoring plugin.",
        epilog=CHECK_EPILOG,
    )
    check.add_argument("--db", help=db_help)
    check.add_argument("--destination", choices=KINDS, help=destination_help)
    rule = check.add_argument
    rule(
        "--stuck-hours",
        type=float,
        metavar="H",
        help="stalled: > H h in a status that has a threshold "
        "(default: statuses.stuck_after_hours, finalizing 6 h)",
    )
    rule("--expiring-hours", type=float, metavar="H", help="expires within H h (default 2)")
    rule("--max-failure-rate", type=float, metavar="R", help="failed/terminal batches (off)")
    rule("--max-request-failure-rate", type=float, metavar="R", help="failed requests (off)")
    rule("--window-hours", type=float, metavar="W", help="window of the rates (default 24)")
    rule("--min-batches", type=int, metavar="N", help="rates need N ended batches (default 5)")
    rule("--max-extract-age", type=float, metavar="MINUTES", help="last extraction (default 60)")
    rule("--max-daily-cost", type=float, metavar="USD", help="spend of the UTC day (off)")
    rule(
        "--severity",
        action="append",
        metavar="RULE=LEVEL",
        help="warning, critical or off for one rule, repeatable",
    )
    check.add_argument(
        "--format",
        choices=("text", "json", "prometheus"),
        default="text",
        help="monitoring-plugin text (default), JSON, or Prometheus' textfile format",
    )
    check.add_argument("--output", metavar="FILE", help="write there atomically, not stdout")
    check.add_argument(
        "--wait",
        type=float,
        default=READ_WAIT_SECONDS,
        metavar="SECONDS",
        help="wait for an extraction writing a DuckDB file to end (default 8)",
    )


def _seconds(text: str) -> float:
    """`--latency`: seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"not a number of seconds, 0 or more: {text!r}")
    return value


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
    from batchlens.storage.target import resolve_target

    wait = getattr(args, "wait", 0.0)  # the readers' --wait
    if wait < 0:
        raise errors.UsageError("--wait must be at least 0 seconds")
    target = resolve_target(args.destination, args.db)
    target.wait_seconds = wait
    for secret in target.secrets():
        redact.add(secret)
    return target


def _extract(args: argparse.Namespace, redact: Redactor) -> int:
    from batchlens.config import apply_requests_mode, parse_headers, resolve_accounts
    from batchlens.run.extract import Progress, ViewsNotBuiltError, extract_accounts
    from batchlens.views.prices import load_overrides

    overrides = load_overrides(args.prices)  # a bad file stops the run before it loads
    target = _target(args, redact)
    if args.html:
        from batchlens.output import check_output

        check_output(Path(args.html), "page")  # a wrong path is exit 2 before anything is loaded
    accounts = resolve_accounts(args.base_url, args.provider, parse_headers(args.header))
    requests = apply_requests_mode(accounts, args.requests)
    for account in accounts:
        for secret in account.secrets():
            redact.add(secret)
    several = len(accounts) > 1
    views_error = None
    try:
        runs = extract_accounts(
            target,
            accounts,
            full=args.full,
            progress=Progress(),
            isolate=several,
            overrides=overrides,
            requests=requests,
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
    loaded = [run.summary for run in runs if run.summary is not None]
    failed_files = sum(summary.files_failed for summary in loaded)
    if failed_files:  # the batches and every complete file are in: a lesser outcome
        why = next((summary.failed_file for summary in loaded if summary.failed_file), None)
        print(
            redact(
                f"batchlens: loaded, but {failed_files} file{'s' if failed_files > 1 else ''} "
                f"could not be downloaded{f' ({why})' if why else ''}; the next run fetches them"
            ),
            file=sys.stderr,
        )
        exit_code = exit_code or errors.FILES_PENDING
    if args.html and exit_code in (errors.OK, errors.FILES_PENDING):
        from batchlens.output import write_atomically

        write_atomically(Path(args.html), _page(target, days=30), "page")
    return exit_code


def _page(target: Any, days: int) -> str:
    from batchlens.report.page import page_from

    with contextlib.closing(target.connect(read_only=True)) as connection:
        return page_from(connection, target.dialect, target.label, days)


def _models(args: argparse.Namespace, redact: Redactor) -> int:
    from batchlens.views.build import build_models
    from batchlens.views.prices import load_overrides

    overrides = load_overrides(args.prices)
    target = _target(args, redact)
    if target.db is not None:
        target.require_database()  # missing, a folder, not a DuckDB file: exit 2
        views = build_models(target.db, overrides=overrides)
    else:
        with target.lock(), contextlib.closing(target.connect()) as connection:
            views = build_models(connection, dialect=target.dialect, overrides=overrides)
    print(f"batchlens models: built {len(views)} views in {target.label}")
    return errors.OK


def _report(args: argparse.Namespace, redact: Redactor) -> int:
    from batchlens.report.terminal import collect_from, show, to_json, to_table
    from batchlens.views.price_list import warn_if_stale

    if args.days < 1:
        raise errors.UsageError("--days must be at least 1")
    target = _target(args, redact)
    if args.output:
        from batchlens.output import check_output

        check_output(Path(args.output), "page")
    warn_if_stale(target, args.prices)
    if args.format == "html":
        text = _page(target, args.days)
    else:
        with contextlib.closing(target.connect(read_only=True)) as connection:
            data = collect_from(connection, target.dialect, args.days, target.label, args.by)
        if not args.output:
            show(data, args.format)
            return errors.OK
        text = (to_json(data) if args.format == "json" else to_table(data)) + "\n"
    if args.output:
        from batchlens.output import write_atomically

        write_atomically(Path(args.output), text, "page")
    else:
        sys.stdout.write(text)
    return errors.OK


def _check(args: argparse.Namespace, redact: Redactor) -> int:
    """Every failure is UNKNOWN (3): exit 1 or 2 would page as WARNING or CRITICAL."""
    from datetime import UTC, datetime

    from batchlens.check.outputs import (
        emit,
        prometheus_registry,
        render,
        render_unknown,
        unknown_registry,
    )
    from batchlens.check.rules import UNKNOWN, evaluate
    from batchlens.check.settings import KEYS, resolve_settings
    from batchlens.check.snapshot import open_read_only, read_snapshot

    prometheus = args.format == "prometheus"
    output = Path(args.output).expanduser().absolute() if args.output else None

    def write(text: str, registry: Any) -> None:
        try:
            emit(text, registry, output)
        except OSError as exc:  # the folder was checked: a full disk, a folder gone since
            raise errors.UsageError(
                f"cannot write the --output file {output}: {exc.strerror or exc}"
            ) from None

    try:
        if output is not None:
            from batchlens.output import check_output

            check_output(output, "--output file")  # before the database is read
        if args.wait < 0:
            raise errors.UsageError("--wait must be at least 0 seconds")
        settings = resolve_settings({key: getattr(args, key) for key in KEYS}, args.severity)
        target = _target(args, redact)
        with open_read_only(target, args.wait) as connection:
            snapshot = read_snapshot(connection, target.dialect, target.label, settings)
        outcome = evaluate(snapshot, settings, datetime.now(UTC))
        write(render(outcome, args.format), prometheus_registry(outcome) if prometheus else None)
        return outcome.state
    except Exception as exc:
        known = errors.classify(exc)
        if (known and known[0] == errors.INTERRUPTED) or (
            known is None and os.environ.get("BATCHLENS_DEBUG")
        ):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        message = redact(known[1] if known else f"unexpected error: {type(exc).__name__}: {first}")
        print(f"batchlens: {message}", file=sys.stderr)
        registry = unknown_registry() if prometheus else None
        try:
            write(render_unknown(message, args.format), registry)
        except errors.UsageError:
            # --output cannot take it: a plugin's reader still finds UNKNOWN on stdout, but
            # Prometheus text there would pass for a result; its reason is on stderr above
            if not prometheus:
                emit(render_unknown(message, args.format), None, None)
        return UNKNOWN


def _prices(args: argparse.Namespace, redact: Redactor) -> int:
    from batchlens.views.price_list import prices_report

    print(prices_report(_target(args, redact), args.prices))
    return errors.OK


def _failed_requests(args: argparse.Namespace, redact: Redactor) -> int:
    from batchlens.report.failed_requests import (
        batch_errors,
        failed_requests,
        render,
        render_batch_errors,
    )

    target = _target(args, redact)
    target.require_database()
    with contextlib.closing(target.connect(read_only=True)) as connection:
        found = failed_requests(connection, target.dialect, args.batch_id)
        whole = [] if found else batch_errors(connection, target.dialect, args.batch_id)
    sys.stdout.write(render(found, args.format, terminal=sys.stdout.isatty()))
    if whole:  # it failed as a whole: stdout stays the (empty) list a script reads
        sys.stdout.flush()
        sys.stderr.write(render_batch_errors(args.batch_id, whole))
    return errors.OK


def _sql(args: argparse.Namespace, redact: Redactor) -> int:
    from batchlens.report.query import render, run_query

    names, found = run_query(_target(args, redact), args.query)
    if names:
        print(render(names, found, args.format))
    return errors.OK


def _notebooks(args: argparse.Namespace, redact: Redactor) -> int:
    from batchlens.notebooks.export import export

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
    """The simulator in the foreground until SIGINT or SIGTERM, which end it with 0.

    As `simulator.server.serve_forever` runs it, with the answers' latency besides (which
    serve_forever does not take).
    """
    import threading
    import time

    from batchlens.simulator.server import Simulator

    now = int(time.time()) if args.now is None else args.now
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    with Simulator(
        batches=args.batches, seed=args.seed, port=args.port, now=now, latency=args.latency
    ) as sim:
        print(f"batchlens simulator at {sim.url} (api key: {sim.api_key})", flush=True)
        while not stop.wait(0.5):
            pass
    return errors.OK


def _demo(args: argparse.Namespace, redact: Redactor) -> int:
    from batchlens.demo import run_demo

    return run_demo(Path(args.db).absolute(), batches=args.batches)


COMMANDS = {
    "extract": _extract,
    "models": _models,
    "report": _report,
    "check": _check,
    "prices": _prices,
    "failed-requests": _failed_requests,
    "sql": _sql,
    "notebooks": _notebooks,
    "simulate": _simulate,
    "demo": _demo,
}


class _Lines(logging.Formatter):
    """`batchlens: warning: ...`, and `batchlens: note: ...` for the loader's notes."""

    def format(self, record: logging.LogRecord) -> str:
        kind = "note" if record.name == "batchlens.notes" else "warning"
        return f"batchlens: {kind}: {record.getMessage()}"


def _log_warnings_to_stderr() -> None:
    """The loader's warnings (an unknown status word, ...) as one `batchlens:` line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Lines())
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("batchlens")
    logger.addHandler(handler)
    logger.propagate = False


def _parse(argv: Sequence[str] | None) -> argparse.Namespace | int:
    """argparse exits 2 on a bad option; for `check` that would read as CRITICAL, so a bad
    option there is UNKNOWN (3), said on stdout too, where monitoring systems look."""
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in words if not word.startswith("-")), None)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return build_parser().parse_args(words)
    except SystemExit as exc:
        sys.stderr.write(captured.getvalue())
        if command != "check" or exc.code in (0, None):
            raise
        reason = captured.getvalue().strip().splitlines()[-1:] or ["bad option"]
        print(f"BATCHLENS UNKNOWN - {reason[0]}", flush=True)
        return CHECK_UNKNOWN


def main(argv: Sequence[str] | None = None) -> int:
    parsed = _parse(argv)
    if isinstance(parsed, int):
        return parsed
    args = parsed
    redact = Redactor()
    _log_warnings_to_stderr()
    # cron and `timeout` send SIGTERM: unwind like Ctrl-C so nothing is half-written.
    signalled.clear()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, _interrupt)
    try:
        code = COMMANDS[args.command](args, redact)
        sys.stdout.flush()  # here, not at exit, so that a reader gone away is caught below
        if signalled:
            # The signal's KeyboardInterrupt was swallowed on its way (raised inside an
            # import's callback, or in C++ code that drops it) and the command went on to
            # the end: it is still the interruption it was asked to be.
            raise KeyboardInterrupt
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


signalled: list[int] = []  # the signals received during the command


def _interrupt(number: int, frame: Any) -> None:
    signalled.append(number)
    raise KeyboardInterrupt


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
