"""`epstats --help` start-up time vs `python -c "import click"`, measured side by side.

Usage: python benchmarks/help_startup.py [--runs N]
The target (issue 2): epstats --help at most 1.5x the bare click import.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import byte_compiled


def best_of(cmd: list[str], runs: int) -> tuple[float, float]:
    """Median and minimum wall time of a command over `runs` runs (after one warm-up)."""
    subprocess.run(cmd, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    byte_compiled()  # as `pip install` does: no run below recompiles a changed module
    base = best_of([sys.executable, "-c", "import click"], args.runs)
    script = Path(sys.executable).parent / "epstats"
    cmd = [str(script), "--help"] if script.exists() else [sys.executable, "-m", "epstats_cli"]
    ours = best_of(cmd, args.runs)
    print(f"{'command':<36}{'median ms':>12}{'min ms':>10}")
    print(f"{'python -c import click':<36}{base[0] * 1000:>12.1f}{base[1] * 1000:>10.1f}")
    print(f"{'epstats --help':<36}{ours[0] * 1000:>12.1f}{ours[1] * 1000:>10.1f}")
    ratio = ours[0] / base[0]
    verdict = "PASS" if ratio <= 1.5 else "FAIL"
    print(f"ratio (median): {ratio:.2f}x  (target <= 1.5x): {verdict}")


if __name__ == "__main__":
    main()
