"""`make bench`: every benchmark, one after the other, printed as Markdown for BENCHMARKS.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for script in ("bench_extract.py", "bench_latency.py", "bench_models.py", "bench_files.py"):
        print(f"\n# {script}\n", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]], check=True)
