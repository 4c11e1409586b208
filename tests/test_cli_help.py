"""``gradlab --help``, every subcommand's ``--help`` and ``--version`` are plain text; the CLI turns
on JAX's persistent compilation cache (opt-out by environment variable)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradlab.cli import SUBCOMMANDS, build_parser, main
from gradlab.cli._help import plain

ROOT = Path(__file__).resolve().parents[1]
MARKUP = ("``", ":math:", ":func:", ":class:", "\\dots", "::")


def _help(argv, capsys) -> str:
    assert main(argv) == 0  # main maps argparse's SystemExit to the exit status
    return capsys.readouterr().out


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help_is_plain_text(command, capsys):
    out = _help([command, "--help"], capsys)
    assert out.startswith(f"usage: gradlab {command}")
    for markup in MARKUP:
        assert markup not in out, f"{markup!r} in `gradlab {command} --help`"
    description = out.split("\n\n")[1]
    assert description.startswith(f"gradlab {command}"), description


def test_every_subcommand_has_a_one_line_summary(capsys):
    out = _help(["--help"], capsys)
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in SUBCOMMANDS:
        line = sub.choices[name]
        assert line.description, name
        summary = next(c for c in sub._choices_actions if c.dest == name).help
        assert summary and "\n" not in summary and "``" not in summary, name
        assert name in out and summary.split()[0] in out


def test_version(capsys):
    import gradlab

    out = _help(["--version"], capsys)
    assert out.startswith(f"gradlab {gradlab.__version__} (jax ")


def test_plain_removes_roles_literals_and_literal_blocks():
    assert (
        plain("Use ``a`` and :func:`gradlab.fit`::\n\n    x") == "Use a and gradlab.fit:\n\n    x"
    )
    assert plain("::\n    x") == "\n    x"
    assert plain(None) is None


def _cli(cache: Path, opt_out: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADLAB_", "JAX_COMP"))}
    env.update(PYTHONPATH=str(ROOT), GRADLAB_COMPILE_CACHE_DIR=str(cache))
    if opt_out:
        env["GRADLAB_NO_COMPILE_CACHE"] = "1"
    cmd = [sys.executable, "-m", "gradlab.cli", "check", "l2_half", "--no-hessian"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_cli_fills_the_compile_cache_unless_opted_out(tmp_path):
    on, off = tmp_path / "on", tmp_path / "off"
    proc = _cli(on, opt_out=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert any(on.iterdir()), "no compiled program was written to the cache"
    proc = _cli(off, opt_out=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not off.exists() or not any(off.iterdir())
