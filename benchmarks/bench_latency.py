"""First-call latency of the CLI: ``gradlab check`` (what ``make run`` runs) cold, then again
with JAX's persistent compilation cache filled by the first call.

    python benchmarks/bench_latency.py [--repeats 1] [-- extra gradlab check arguments]

Each run is a fresh process, as a user's shell is. Rows: the cache turned off
(``GRADLAB_NO_COMPILE_CACHE=1``), the first call into an empty cache folder (compiles and
writes), the second call (reads). Target: the second at most a third of the first.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_check(cache: Path, opt_out: bool, extra: list[str]) -> float:
    """Wall seconds of one ``gradlab check`` process (it must exit 0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADLAB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["GRADLAB_COMPILE_CACHE_DIR"] = str(cache)
    if opt_out:
        env["GRADLAB_NO_COMPILE_CACHE"] = "1"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "gradlab.cli", "check", *extra],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"gradlab check failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the three rows")
    parser.add_argument("extra", nargs="*", help="arguments passed on to gradlab check")
    args = parser.parse_args()
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cpus, "
        f"load {os.getloadavg()[0]:.1f}; python {platform.python_version()}"
    )
    rows = {"cache off": [], "first call (empty cache)": [], "second call (cache filled)": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cache = Path(tmp) / "jax"
            rows["cache off"].append(timed_check(cache, True, args.extra))
            rows["first call (empty cache)"].append(timed_check(cache, False, args.extra))
            rows["second call (cache filled)"].append(timed_check(cache, False, args.extra))
            size = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
            files = sum(1 for f in cache.rglob("*") if f.is_file())
    print(f"gradlab check {' '.join(args.extra)}: wall seconds, fresh process each")
    print(f"{'run':<28} {'min s':>7} {'all':>24}")
    for name, times in rows.items():
        print(f"{name:<28} {min(times):7.2f} {' '.join(f'{t:.2f}' for t in times):>24}")
    first, second = min(rows["first call (empty cache)"]), min(rows["second call (cache filled)"])
    print(
        f"second / first: {second / first:.3f} (target <= 0.333); cache {files} files, "
        f"{size / 1e6:.1f} MB; load after {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
