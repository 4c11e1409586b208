"""Run every ``benchmarks/bench_*.py`` in turn, each in its own process, and echo its table.

    python benchmarks/run_all.py            # all of them
    python benchmarks/run_all.py check fit  # only bench_check.py and bench_fit.py

Each benchmark times gradlab side by side with its peers in one process and prints ratios; the
numbers recorded with their machine live in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(names: list[str]) -> int:
    known = available()
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {known}", file=sys.stderr)
        return 2
    status = 0
    for name in names or known:
        print(f"\n=== bench_{name}.py ===", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / f"bench_{name}.py")])
        print(f"--- bench_{name}.py: exit {rc}, {time.perf_counter() - start:.1f} s", flush=True)
        status = status or rc
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
