"""The real Portkey AI gateway (npm `@portkey-ai/gateway`, pinned in tests/gateway) between
the CLI and the simulator: `x-portkey-custom-host` points the gateway at the simulator.

What the gateway does to answers (1.15.2, observed here and asserted below): upstream errors
keep their status and get an "openai error: " prefix; Retry-After is passed through and the
gateway does not retry unless an `x-portkey-config` asks it to; an upstream that answers 200
with a non-JSON body comes back as 200 `{"html-message": ...}`; an unreachable upstream, a
dropped socket or an HTML 502 come back as 5xx `{"html-message": ...}`; a 200 with broken JSON
as 500 `{"status": "failure", "message": "Something went wrong"}`; a request without
`x-portkey-provider`/`x-portkey-config` as 400 without reaching the upstream.

The gateway is started once per module with `node` directly (not npx: nothing is fetched at
test time), on a free port, forced onto 127.0.0.1 (it listens on every interface otherwise),
with a bare environment: no proxy variables (it would route upstream calls through them), no
keys, custom hosts limited to 127.0.0.1. Its build has no telemetry; it only calls the
upstream a request names (and guardrail services when a config asks for them, never here).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import psutil
import pytest
import requests

from batchlens.simulator.server import Simulator
from helpers import KEY, assert_matches_history, cli_env, run_cli, snapshot, summary

pytestmark = pytest.mark.gateway

GATEWAY_DIR = Path(__file__).parent / "gateway"
PACKAGE_DIR = GATEWAY_DIR / "node_modules" / "@portkey-ai" / "gateway"
INSTALL_HINT = (
    "Portkey gateway not installed: run `npm ci --prefix tests/gateway` "
    "(needs node >= 20 and npm) to run the gateway tests"
)
FAST_FAIL = {"RUNTIME__REQUEST_MAX_ATTEMPTS": "2"}
DIRECT = requests.Session()  # the test's own requests to 127.0.0.1: never via a proxy
DIRECT.trust_env = False

# Preloaded with `node --import`: the gateway calls `server.listen(port)` with no host, which
# is every interface; this pins every TCP listener of the process to the loopback address.
LOOPBACK_ONLY = textwrap.dedent("""\
    import net from "node:net";
    const listen = net.Server.prototype.listen;
    net.Server.prototype.listen = function (...args) {
      if (typeof args[0] === "number") {
        const rest = args.slice(1).filter((a) => typeof a !== "string" && a !== undefined);
        return listen.call(this, args[0], "127.0.0.1", ...rest);
      }
      if (args[0] && typeof args[0] === "object" && args[0].path === undefined) {
        args[0] = { ...args[0], host: "127.0.0.1" };
      }
      return listen.apply(this, args);
    };
""")


@dataclass
class Gateway:
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def free_port() -> int:
    """A loopback port nobody listens on (also used as an upstream that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def installed_gateway() -> tuple[str, Path]:
    """(node, the package's bin script), or a loud skip."""
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"{INSTALL_HINT} -- `node` is not on PATH")
    manifest = PACKAGE_DIR / "package.json"
    if not manifest.exists():
        pytest.skip(INSTALL_HINT)
    package = json.loads(manifest.read_text())
    bin_ = package["bin"]
    entry = PACKAGE_DIR / (bin_ if isinstance(bin_, str) else next(iter(bin_.values())))
    if not entry.exists():
        pytest.skip(f"{INSTALL_HINT} -- {entry} is missing")
    return node, entry


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    node, entry = installed_gateway()
    folder = tmp_path_factory.mktemp("gateway")
    preload = folder / "loopback-only.mjs"
    preload.write_text(LOOPBACK_ONLY)
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "TRUSTED_CUSTOM_HOSTS": "127.0.0.1",
        "NO_COLOR": "1",
    }
    log_path = folder / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [node, "--import", str(preload), str(entry), f"--port={port}", "--headless"],
            cwd=GATEWAY_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    gw = Gateway(port, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"the gateway exited with {process.returncode}:\n{gw.log()}")
            try:
                if DIRECT.get(f"http://127.0.0.1:{port}/", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the gateway did not answer on port {port} in 30 s:\n{gw.log()}")
            time.sleep(0.1)
        listening = [
            c.laddr
            for c in psutil.Process(process.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
        yield gw
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def through(
    gw: Gateway, upstream: str, db: Path, *more: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`batchlens extract` via the gateway, which forwards to `upstream` (a .../v1 URL).

    Without request files unless asked: the gateway cannot proxy their content (see
    `test_request_files_through_the_gateway`).
    """
    if "--requests" not in more:
        more = (*more, "--requests", "none")
    return run_cli(
        "extract", "--db", str(db), "--base-url", gw.url, "--provider", "openai",
        "--header", f"x-portkey-custom-host: {upstream}", *more, cwd=db.parent, env=env,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("batchlens:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def loaded_template(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One good run through the gateway against the `sim` fixture's history (same seed)."""
    db = tmp_path_factory.mktemp("template") / "batches.duckdb"
    with Simulator(batches=450, seed=11, api_key=KEY) as simulator:
        result = through(gateway, simulator.url, db)
    assert result.returncode == 0, result.stderr
    return db


@pytest.fixture
def loaded(loaded_template: Path, sim: Simulator, db: Path) -> tuple:
    """A copy of that database (its state travels inside it), news waiting, and its snapshot."""
    shutil.copyfile(loaded_template, db)
    assert_matches_history(db, sim)
    sim.advance(86400)
    sim.add_batches(5)
    sim.reset_requests()
    return snapshot(db)


@pytest.fixture
def html_upstream() -> Iterator[str]:
    """An upstream that answers every request 200 text/html, as a captive portal does."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body>Down for maintenance</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


# --- complete and incremental through the gateway -------------------------------------------


def test_the_whole_history_through_the_gateway(gateway: Gateway, sim: Simulator, db: Path) -> None:
    result = through(gateway, sim.url, db)
    assert result.returncode == 0, result.stderr
    assert_matches_history(db, sim)
    pages = math.ceil(len(sim.visible()) / 100)
    assert sim.list_requests == pages == summary(result)["pages"]
    # the gateway forwards limit and after unchanged
    queries = [query for _, path, query, _ in sim.requests if path == "/v1/batches"]
    assert all(query["limit"] == "100" for query in queries)
    assert "after" not in queries[0] and all("after" in query for query in queries[1:])


def test_incremental_runs_through_the_gateway(gateway: Gateway, sim: Simulator, db: Path) -> None:
    first = through(gateway, sim.url, db)
    assert first.returncode == 0, first.stderr
    still_open = summary(first)["still_open"]
    sim.advance(6 * 3600)
    sim.add_batches(150, same_second=False)
    sim.reset_requests()
    second = through(gateway, sim.url, db)
    assert second.returncode == 0, second.stderr
    assert_matches_history(db, sim)
    assert summary(second)["new"] == 150
    assert sim.list_requests >= math.ceil(150 / 100)
    # ceil(new/100) + 1 pages, plus one request per batch open at the last run
    assert sim.list_requests + sim.retrieve_requests <= math.ceil(150 / 100) + 1 + still_open


def test_the_dlt_configuration_form_of_the_readme(
    gateway: Gateway, sim: Simulator, db: Path
) -> None:
    """base_url and provider in config.toml; key and gateway headers in secrets.toml, among
    them an x-portkey-config (JSON in a TOML string) whose retry absorbs a 429."""
    dlt_dir = db.parent / ".dlt"
    dlt_dir.mkdir()
    (dlt_dir / "config.toml").write_text(
        f'[sources.openai_batches]\nbase_url = "{gateway.url}"\nprovider = "openai"\n'
    )
    (dlt_dir / "secrets.toml").write_text(
        textwrap.dedent(f"""\
            [sources.openai_batches]
            api_key = "{KEY}"

            [sources.openai_batches.headers]
            x-portkey-custom-host = "{sim.url}"
            x-portkey-config = '{{"retry": {{"attempts": 2, "on_status_codes": [429]}}}}'
        """)
    )
    sim.inject("429", times=1, on="list", retry_after="1")
    env = cli_env()
    del env["OPENAI_API_KEY"]
    result = run_cli("extract", "--db", str(db), cwd=db.parent, env=env)
    assert result.returncode == 0, result.stderr
    assert summary(result)["retries"] == 0
    assert [status for *_, status in sim.requests].count(429) == 1
    assert_matches_history(db, sim)


# --- errors the API sends come through ------------------------------------------------------


def test_a_wrong_key_exits_4_with_the_api_message_through_the_gateway(
    gateway: Gateway, sim: Simulator, db: Path
) -> None:
    wrong = "sk-wrong-CANARY-0042-batchlens"
    result = through(gateway, sim.url, db, env=cli_env(OPENAI_API_KEY=wrong))
    assert result.returncode == 4
    message = one_line_error(result)
    assert "HTTP 401" in message
    assert "openai error: Incorrect API key provided." in message  # the gateway's prefix
    assert wrong not in result.stdout + result.stderr
    assert sim.list_requests == 1  # refused, not retried
    assert snapshot(db) == ()


def test_the_gateway_passes_retry_after_through_and_does_not_retry_itself(
    gateway: Gateway, sim: Simulator
) -> None:
    sim.inject("429", times=1, on="list", retry_after="7")
    response = DIRECT.get(
        f"{gateway.url}/batches",
        params={"limit": 1},
        headers={
            "Authorization": f"Bearer {KEY}",
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": sim.url,
        },
        timeout=10,
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.headers["x-portkey-retry-attempt-count"] == "0"
    assert response.json()["error"]["message"].startswith("openai error: Rate limit reached")
    assert sim.list_requests == 1


def test_429_with_retry_after_through_the_gateway_is_retried(
    gateway: Gateway, sim: Simulator, db: Path
) -> None:
    sim.inject("429", every=2, times=2, on="list", retry_after="1")
    result = through(gateway, sim.url, db)
    assert result.returncode == 0, result.stderr
    assert summary(result)["retries"] == 2
    assert [status for *_, status in sim.requests].count(429) == 2
    assert_matches_history(db, sim)


@pytest.mark.parametrize("form", ["config carries the key", "config only retries"])
def test_a_gateway_config_that_retries_429_itself(
    gateway: Gateway, sim: Simulator, db: Path, form: str
) -> None:
    """`x-portkey-config` with `retry`: the gateway absorbs the 429 before batchlens sees it.

    When the config names the provider, the provider key must be in the config too: the
    gateway then ignores the Authorization header, and batchlens needs no key of its own.
    """
    retry = {"attempts": 2, "on_status_codes": [429]}
    if form == "config carries the key":
        config = {"provider": "openai", "api_key": KEY, "custom_host": sim.url, "retry": retry}
        args = ["--header", f"x-portkey-config: {json.dumps(config)}"]
        env = cli_env()
        del env["OPENAI_API_KEY"]  # the config carries the key: none is needed here
    else:
        args = [
            "--provider", "openai", "--header", f"x-portkey-custom-host: {sim.url}",
            "--header", f"x-portkey-config: {json.dumps({'retry': retry})}",
        ]  # fmt: skip
        env = cli_env()
    sim.inject("429", times=1, on="list", retry_after="1")
    result = run_cli(
        "extract", "--db", str(db), "--base-url", gateway.url, *args, cwd=db.parent, env=env
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert summary(result)["retries"] == 0  # retried by the gateway, not by batchlens
    assert [status for *_, status in sim.requests].count(429) == 1
    assert_matches_history(db, sim)


# --- the gateway's own answers: exit 1, a clear message, nothing changed ---------------------


def test_an_upstream_that_is_down_exits_1(
    gateway: Gateway, sim: Simulator, db: Path, loaded: tuple
) -> None:
    closed = free_port()
    result = through(gateway, f"http://127.0.0.1:{closed}/v1", db, env=cli_env(**FAST_FAIL))
    assert result.returncode == 1
    message = one_line_error(result)
    assert "HTTP 500 after retries" in message and "gateway html-message" in message
    assert f"ECONNREFUSED 127.0.0.1:{closed}" in message
    assert snapshot(db) == loaded
    assert through(gateway, sim.url, db).returncode == 0  # the next run picks everything up
    assert_matches_history(db, sim)


def test_a_non_json_200_upstream_exits_1(
    gateway: Gateway, db: Path, loaded: tuple, html_upstream: str
) -> None:
    result = through(gateway, html_upstream, db, "--full", env=cli_env(**FAST_FAIL))
    assert result.returncode == 1
    message = one_line_error(result)
    assert "the gateway could not use its upstream's answer" in message
    assert "Down for maintenance" in message
    assert snapshot(db) == loaded


@pytest.mark.parametrize(
    ("kind", "status", "words"),
    [
        ("malformed", 500, "Something went wrong"),  # 200 with broken JSON
        ("502", 502, "gateway html-message: <html>"),  # an HTML 502 from a load balancer
        ("drop", 500, "other side closed"),  # the socket closed without an answer
        ("503", 503, "openai error: The engine is currently overloaded"),
    ],
)
def test_upstream_failures_exit_1_and_change_nothing(
    gateway: Gateway, sim: Simulator, db: Path, loaded: tuple, kind: str, status: int, words: str
) -> None:
    sim.inject(kind, times=50, on="list")
    result = through(gateway, sim.url, db, "--full", env=cli_env(**FAST_FAIL))
    assert result.returncode == 1
    message = one_line_error(result)
    assert f"HTTP {status} after retries" in message and words in message, message
    assert sim.list_requests == 2  # batchlens retried; the gateway did not
    assert snapshot(db) == loaded


def test_without_a_provider_the_gateway_answers_400(
    gateway: Gateway, sim: Simulator, db: Path
) -> None:
    result = run_cli(
        "extract", "--db", str(db), "--base-url", gateway.url,
        "--header", f"x-portkey-custom-host: {sim.url}", cwd=db.parent, env=cli_env(**FAST_FAIL),
    )  # fmt: skip
    assert result.returncode == 2  # a configuration error: retrying from cron will not help
    message = one_line_error(result)
    assert (
        "HTTP 400" in message and "--provider openai" in message and "after retries" not in message
    )
    assert "Either x-portkey-config or x-portkey-provider header is required" in message
    assert sim.requests == []  # the gateway answered itself
    assert snapshot(db) == ()


# --- request files through the gateway ------------------------------------------------------


def test_request_files_through_the_gateway(gateway: Gateway, db: Path) -> None:
    """Gateway 1.15.2 does not proxy /v1/files/{id}/content: its openai handler returns the
    upstream's own response and then fails to add its headers to it ("TypeError: immutable"),
    so every download answers 500 "Something went wrong", whatever the upstream sends. The
    run fails as a failed download must (exit 1, nothing written), naming the workaround."""
    with Simulator(batches=150, seed=21, api_key=KEY) as small:
        result = through(gateway, small.url, db, "--requests", "errors")
        assert result.returncode == 1, result.stderr
        errors = [line for line in result.stderr.splitlines() if "so far" not in line]
        assert len(errors) == 1 and "Traceback" not in result.stderr
        assert "--requests none" in errors[0].split("failed with HTTP 500")[1]
        assert snapshot(db) == ()
        assert small.content_requests() >= 1  # the gateway did ask the upstream
        small.reset_requests()
        result = through(gateway, small.url, db)  # --requests none: the batches load
        assert result.returncode == 0, result.stderr
        assert_matches_history(db, small)
        assert small.content_requests() == 0
