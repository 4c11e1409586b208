"""``gradlab check``: the registry table, a user's own derivation (module:function or .npz
arguments), JSON output and exit statuses."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from gradlab.cli import main

USER_MODULE = textwrap.dedent(
    """
    import jax.numpy as jnp
    import numpy as np

    def loss(p, X, y):
        r = X @ p["w"] - y
        return 0.5 * jnp.mean(r ** 2) + 0.1 * jnp.sum(p["w"] ** 2)

    def grad(p, X, y):
        r = X @ p["w"] - y
        return {"w": r @ X / X.shape[0] + 0.2 * p["w"]}

    def grad_bug(p, X, y):  # numpy, L2 factor 2 missing
        X, y, w = np.asarray(X), np.asarray(y), np.asarray(p["w"])
        return {"w": X.T @ (X @ w - y) / X.shape[0] + 0.1 * w}

    def value_and_grad(p, X, y):  # (value, gradient), scikit-learn's convention
        return loss(p, X, y), grad(p, X, y)

    def make_args():
        rng = np.random.default_rng(0)
        return {"w": rng.normal(size=3)}, rng.normal(size=(10, 3)), rng.normal(size=10)
    """
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "cli_user_mod.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_registry_subset_prints_the_table_and_exits_zero(capsys, tmp_path):
    out_json = tmp_path / "reg.json"
    assert main(["check", "mse_mean", "l1", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("derivation"))
    assert "hand~autodiff rel err" in header and "fd agrees" in header and "kinks" in header
    assert any(line.startswith("mse_mean") and line.endswith("ok") for line in lines)
    assert "2 check(s), 0 mismatch(es)" in out
    data = json.loads(out_json.read_text())
    assert data["mse_mean@16x3"]["grad"]["ok"] is True and "hessian" in data["mse_mean@16x3"]


def test_user_derivation_with_module_args(user_module, capsys):
    assert (
        main(
            ["check", "cli_user_mod:loss", "cli_user_mod:grad", "--args", "cli_user_mod:make_args"]
        )
        == 0
    )
    assert "ok" in capsys.readouterr().out
    code = main(
        [
            "check",
            "cli_user_mod:loss",
            "cli_user_mod:grad_bug",
            "--args",
            "cli_user_mod:make_args",
            "--json",
            "bug.json",
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "eagerly" in out and "['w']" in out
    data = json.loads((user_module / "bug.json").read_text())
    assert data["ok"] is False and data["leaves"][0]["path"] == "['w']"


def test_user_derivation_with_npz_args(user_module, capsys):
    rng = np.random.default_rng(1)
    np.savez(
        user_module / "point.npz",
        **{"0.w": rng.normal(size=3), "1": rng.normal(size=(8, 3)), "2": rng.normal(size=8)},
    )
    assert (
        main(
            [
                "check",
                "cli_user_mod.py:loss",
                "cli_user_mod.py:grad",
                "--args",
                "point.npz",
                "--mode",
                "fast",
            ]
        )
        == 0
    )


def test_bad_invocations_exit_two_with_a_message(user_module, capsys):
    assert main(["check", "no_such_derivation"]) == 2
    assert "unknown derivation" in capsys.readouterr().err
    assert main(["check", "cli_user_mod:loss"]) == 2
    assert "exactly two" in capsys.readouterr().err
    assert main(["check", "cli_user_mod:loss", "cli_user_mod:grad"]) == 2
    assert "needs --args" in capsys.readouterr().err
    assert main(["check", "cli_user_mod:loss", "cli_user_mod:nope", "--args", "x:y"]) == 2
    assert "has no attribute 'nope'" in capsys.readouterr().err


def test_user_value_and_grad_function(user_module, capsys):
    ref = ["cli_user_mod:loss", "cli_user_mod:value_and_grad", "--args", "cli_user_mod:make_args"]
    assert main(["check", *ref, "--value-and-grad"]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["check", *ref]) == 2  # a (value, gradient) pair is not the parameters' tree


SEED001 = "tests/fixtures/seeds/seed001.ipynb"


def test_a_notebook_target_is_audited_and_its_blame_printed(capsys, monkeypatch, request):
    monkeypatch.chdir(request.config.rootpath)
    assert main(["check", f"{SEED001}:LinearModel.backward"]) == 1
    out = capsys.readouterr().out
    assert "LinearModel.backward <- Loss.__call__: WRONG" in out
    assert "blame: term 'l1'" in out and "blame: term 'l2'" in out


def _one_line_error(capsys, prefix="gradlab check: ") -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_usage_errors_exit_two_in_one_line_without_traceback(user_module, capsys):
    good = ["cli_user_mod:loss", "cli_user_mod:grad"]
    assert main(["check", "no_such_mod:loss", "no_such_mod:grad", "--args", "x.npz"]) == 2
    assert "no module named 'no_such_mod'" in _one_line_error(capsys)
    assert main(["check", *good, "--args", "missing.npz"]) == 2
    assert "missing.npz: no such file" in _one_line_error(capsys)
    args = ["--args", "cli_user_mod:make_args"]
    assert main(["check", *good, *args, "--json", str(user_module / "nodir" / "o.json")]) == 2
    assert "--json" in _one_line_error(capsys)
    assert main(["check", *good, *args, "--precision", "high"]) == 2
    assert "unrecognized arguments: --precision" in _one_line_error(capsys)
    assert main(["check", "missing.ipynb:grad"]) == 2
    _one_line_error(capsys)
    assert main(["check", "no_such_derivation"]) == 2
    assert "unknown derivation" in _one_line_error(capsys)


def test_a_mismatch_exits_one(user_module, capsys):
    args = ["cli_user_mod:loss", "cli_user_mod:grad_bug", "--args", "cli_user_mod:make_args"]
    assert main(["check", *args]) == 1
    assert capsys.readouterr().err == ""


def test_check_and_sweep_docstrings_are_plain_text_and_mode_has_help():
    import argparse

    from gradlab.cli import build_parser, check, sweep

    for module in (check, sweep):
        assert "``" not in module.__doc__ and ":math:" not in module.__doc__, module.__name__
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    mode = next(a for a in sub.choices["check"]._actions if "--mode" in a.option_strings)
    assert mode.help and "fast" in mode.help
