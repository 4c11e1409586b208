"""``gradlab check | run | sweep | bench``: a thin layer that parses arguments, calls the library.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``, which registers the
subcommand and sets ``func(args) -> int`` (the exit status).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys

from gradlab.cli._help import plain_parser

SUBCOMMANDS = ("check", "run", "sweep", "bench", "audit")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradlab", description="Autodiff-verified hand gradients, training and sweeps."
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"gradlab.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"gradlab.cli.{name}":
                raise
            continue
        module.add_parser(sub)
    for subparser in sub.choices.values():
        plain_parser(subparser)  # module docstrings are reST; help is plain text
    return parser


def _version() -> str:
    from gradlab import __version__

    return f"gradlab {__version__} (jax {importlib.metadata.version('jax')})"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from gradlab._compile_cache import enable_compile_cache

    enable_compile_cache()  # a second call reuses compiled programs; GRADLAB_NO_COMPILE_CACHE=1
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
