"""Shared by the benchmarks: the CLI and the SDK baseline as timed child processes."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KEY = "sk-bench-batchlens-0000"


@dataclass
class Run:
    seconds: float
    max_rss_mb: float
    stdout: str


def timed(command: list[str], env: dict[str, str] | None = None) -> Run:
    """Wall time from process start to exit, and that process's own peak RSS (wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", **(env or {})},
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"{command[:3]} exited {process.returncode}: {err.read()[-500:]}")
        return Run(seconds, usage.ru_maxrss / 1024, out.read())


def extract(base_url: str, db: Path, *more: str, env: dict[str, str] | None = None) -> Run:
    return timed(
        [str(BIN / "batchlens"), "extract", "--db", str(db), "--base-url", base_url, *more],
        env={"OPENAI_API_KEY": KEY, **(env or {})},
    )


def sdk_fetch(base_url: str) -> Run:
    return timed([sys.executable, str(ROOT / "bench" / "sdk_baseline.py"), base_url, KEY])


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine_note() -> str:
    import platform

    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
