"""Shared benchmark plumbing: a throwaway server (or $EPSTATS_BENCH_DSN) and timing helpers."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def byte_compiled() -> None:
    """Write epstats' bytecode now, as `pip install` does for a regular install. An editable
    install run with PYTHONDONTWRITEBYTECODE (as some shells and CI set) otherwise recompiles
    every module changed since the last write on every start, which is not what users time."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "epstats_cli")],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )


@contextmanager
def server(version: int = 18) -> Iterator[str]:
    """A DSN: $EPSTATS_BENCH_DSN, or a fresh local server that is removed afterwards (epstats
    byte-compiled first: the whole processes timed start as an installed epstats does)."""
    byte_compiled()
    if os.environ.get("EPSTATS_BENCH_DSN"):
        yield os.environ["EPSTATS_BENCH_DSN"]
        return
    from tests.pgcluster import bin_dirs, create_cluster

    cluster = create_cluster(version, bin_dirs()[version])
    try:
        yield cluster.dsn
    finally:
        cluster.destroy()


def arguments(doc: str | None, repeat: int) -> argparse.ArgumentParser:
    """The options every data-set benchmark takes: its rows, over how many days, how many
    times each measurement is repeated, and the server's major version."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--version", type=int, default=18)
    return parser


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def load(base: list[str], rows: int, days: int, until: str) -> None:
    """`epstats init --with-requests-table`, then `generate` of `rows` over `days` up to
    `until` (the data set a benchmark reads), through the real command line."""
    epstats(*base, "-q", "init", "--with-requests-table")
    epstats(*base, "-q", "generate", "--rows", str(rows), "--days", str(days), "--until", until)


def epstats(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real epstats command line (the console script next to this Python)."""
    script = Path(sys.executable).parent / "epstats"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "epstats_cli"]
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"
