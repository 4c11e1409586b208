"""``gradlab bench [NAME ...]``: run the side-by-side benchmarks in ``benchmarks/``.

Benchmarks live beside the package in a source checkout (they time peers such as torch and
scipy that are not gradlab dependencies), so this command needs the repository: it looks for
``benchmarks/`` next to the installed package, or where ``--dir`` says.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from gradlab.cli import UsageError

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="run the benchmarks in benchmarks/ (source checkout)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("names", nargs="*", help="benchmark names (bench_NAME.py); all when omitted")
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the benchmarks folder")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    runner = args.dir / "run_all.py"
    if not runner.is_file():
        raise UsageError(
            f"--dir must be a benchmarks folder holding run_all.py; got {args.dir} "
            "(benchmarks ship with the source checkout, not the wheel)"
        )
    if args.list:
        names = sorted(p.stem.removeprefix("bench_") for p in args.dir.glob("bench_*.py"))
        print("\n".join(names))
        return 0
    return subprocess.call([sys.executable, str(runner), *args.names])
