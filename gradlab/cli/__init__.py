"""``gradlab check | run | sweep | bench``: a thin layer that parses arguments, calls the library.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``, which registers the
subcommand and sets ``func(args) -> int`` (the exit status).

Exit statuses, the same for every subcommand (:func:`main` maps exceptions to them, so a
subcommand only raises):

====  ========================================================================================
0     success
1     the check failed: a gradient mismatch, a claim an experiment did not verify
2     a usage error: a bad flag or value, a missing file or module, an unwritable output, a
      refused checkpoint. One line on stderr, ``gradlab <command>: <message>``, no traceback.
      Raise :class:`UsageError` (or ``ValueError``, ``TypeError``, ``OSError``,
      ``ImportError``: the library's validation errors, which name the bad input)
3     an internal error: the only case that prints a traceback (please report it)
130   interrupted (Ctrl-C), with what was saved
====  ========================================================================================

A closed stdout (``gradlab run --list | head -1``) ends the command silently with status 141
(128 + SIGPIPE, what a command killed by the signal reports). ``GRADLAB_TRACEBACK=1`` shows the
traceback of a usage error too.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from gradlab.cli._help import plain_parser

SUBCOMMANDS = ("check", "run", "sweep", "bench", "audit")

OK, FAILED, USAGE, INTERNAL, INTERRUPTED, BROKEN_PIPE = 0, 1, 2, 3, 130, 141


class UsageError(Exception):
    """A user error the CLI reports in one line with exit status 2."""


USER_ERRORS = (UsageError, ValueError, TypeError, OSError, ImportError)


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line (``gradlab sweep: --precision: invalid choice ...``)."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _version() -> str:
    """``gradlab X (jax Y)``, read from the installed metadata without importing jax."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"gradlab {version('gradlab')} (jax {version('jax')})"
    except PackageNotFoundError:
        return "gradlab (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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


def check_writable(folder, names=(), consequence: str = "its results would be lost") -> None:
    """Create ``folder`` and check that files can be written there and that the existing files
    ``names`` can be overwritten, before any work starts; :class:`UsageError` otherwise."""
    from pathlib import Path

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".gradlab-write-test-{os.getpid()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        os.unlink(probe)
        for name in names:
            if (folder / name).exists():
                os.close(os.open(folder / name, os.O_WRONLY | os.O_APPEND))
    except OSError as err:
        raise UsageError(
            f"output folder {str(folder)!r} is not writable ({err.strerror}); {consequence}: "
            "choose another folder"
        ) from None


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, OSError) and err.filename is not None and str(err.filename) not in text:
        text = f"{text}: {err.filename}"
    return text


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _prog(argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    command = next((a for a in args if a in SUBCOMMANDS), None)
    return f"gradlab {command}" if command else "gradlab"


def main(argv: list[str] | None = None) -> int:
    """Run ``gradlab ARGV``; return the exit status (see the module docstring)."""
    prog = _prog(argv)
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exit_:  # --help, --version
            return int(exit_.code or 0)
        from gradlab._compile_cache import enable_compile_cache

        enable_compile_cache()  # a second call reuses compiled programs; GRADLAB_NO_COMPILE_CACHE=1
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a broken pipe surfaces here, not at interpreter exit
        return status
    except BrokenPipeError:
        _silence_stdout()
        return BROKEN_PIPE
    except KeyboardInterrupt as err:
        detail = str(err).strip()
        print(f"{prog}: interrupted" + (f"; {detail}" if detail else ""), file=sys.stderr)
        return INTERRUPTED
    except USER_ERRORS as err:
        if os.environ.get("GRADLAB_TRACEBACK"):
            traceback.print_exc()
        print(f"{prog}: {_one_line(err)}", file=sys.stderr)
        return USAGE
    except Exception:  # noqa: BLE001 - the internal-error path: the one traceback
        traceback.print_exc()
        print(f"{prog}: internal error (the traceback above); please report it", file=sys.stderr)
        return INTERNAL


if __name__ == "__main__":
    sys.exit(main())
