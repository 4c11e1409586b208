"""``gradlab check | run | sweep | bench``: a thin layer that parses arguments, calls the library.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``, which registers the
subcommand and sets ``func(args) -> int`` (the exit status).
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ("check", "run", "sweep", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradlab", description="Autodiff-verified hand gradients, training and sweeps."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"gradlab.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"gradlab.cli.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
