"""``gradlab sweep``: the example file runs, --set overrides parse without eval, files written."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from gradlab.cli import main
from gradlab.cli.sweep import apply_overrides, load_spec, parse_set, parse_values

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "experiments" / "sweeps" / "linreg_lr.py"


class TestParse:
    def test_forms(self):
        np.testing.assert_allclose(parse_values("logspace(-4,0,5)"), np.logspace(-4, 0, 5))
        np.testing.assert_allclose(parse_values(" linspace(0, 1, 3) "), [0, 0.5, 1])
        assert parse_values("range(4)").tolist() == [0, 1, 2, 3]
        assert parse_values("range(2,8,3)").tolist() == [2, 5]
        assert parse_values("0.001,0.01,5e-2").tolist() == [0.001, 0.01, 0.05]
        assert parse_values("7").tolist() == [7]
        name, vals = parse_set("lr=logspace(-2,0,3)")
        assert name == "lr" and vals.tolist() == [0.01, 0.1, 1.0]

    @pytest.mark.parametrize(
        "text, match",
        [
            ("__import__('os').system('true')", "not a number"),
            ("logspace(-4,0)", r"logspace\(a,b,n\)"),
            ("logspace(-4,0,2.5)", r"logspace\(a,b,n\)"),
            ("range(0.5)", "integers"),
            ("range(3,1)", "empty"),
            ("0.1,,0.2", "not a number"),
            ("", "empty value list"),
            ("exp(1)", "not a number"),
        ],
    )
    def test_rejects(self, text, match):
        with pytest.raises(ValueError, match=match):
            parse_values(text)

    def test_set_syntax_and_names(self):
        with pytest.raises(ValueError, match="NAME=VALUES"):
            parse_set("lr")
        grid = {"lr": np.float32([0.1]), "seed": np.int32([0])}
        new = apply_overrides(grid, ["lr=0.5,0.25", "seed=range(3)"])
        # stored as typed (float64 / int64), not cast to the file's float32: 0.1 stays 0.1
        assert new["lr"].dtype == np.float64 and new["seed"].dtype == np.int64
        assert apply_overrides(grid, ["lr=0.1"])["lr"].tolist() == [0.1]
        with pytest.raises(ValueError, match="not in the sweep's grid"):
            apply_overrides(grid, ["l2=0.1"])
        with pytest.raises(ValueError, match="takes integers"):
            apply_overrides(grid, ["seed=0.5"])


def test_example_file_with_override(tmp_path, capsys):
    out = tmp_path / "res"
    code = main(
        [
            "sweep",
            str(EXAMPLE),
            "--set",
            "lr=0.001,0.01,0.05,0.2",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "4 configurations" in printed and "2 diverged" in printed
    with open(out / "table.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["diverged"] for r in rows] == ["False", "False", "True", "True"]  # seed 002
    doc = json.loads((out / "table.json").read_text())
    assert doc["meta"]["size"] == 4 and doc["meta"]["precision"] == "highest"
    for name in ("curves.png", "frontier.png"):
        assert (out / name).stat().st_size > 2000


def test_named_sweep_heatmap_and_make_sweep(tmp_path):
    out = tmp_path / "ridge"
    code = main(
        [
            "sweep",
            f"{EXAMPLE}:RIDGE",
            "--set",
            "lr=logspace(-3,-1,4)",
            "--out",
            str(out),
            "--no-progress",
            "--checkpoint",
        ]
    )
    assert code == 0
    assert (out / "heatmap.png").stat().st_size > 2000
    assert (out / "checkpoint" / "manifest.json").exists()
    f = tmp_path / "mine.py"
    f.write_text(
        "import jax.numpy as jnp\n"
        "def make_sweep():\n"
        "    return dict(train=lambda hp, key: {'loss': (hp['a'] - 1.0) ** 2},\n"
        "                grid={'a': [0.0, 1.0, 3.0]})\n"
    )
    spec, label = load_spec(str(f))
    assert label == "mine" and set(spec) == {"train", "grid"}
    assert main(["sweep", str(f), "--out", str(tmp_path / "m"), "--no-progress"]) == 0
    with open(tmp_path / "m" / "table.csv") as fh:
        assert [float(r["loss"]) for r in csv.DictReader(fh)] == [1.0, 0.0, 4.0]


def test_bad_files_exit_2(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "nope.py")]) == 2
    f = tmp_path / "empty.py"
    f.write_text("X = 1\n")
    assert main(["sweep", str(f)]) == 2
    assert main(["sweep", f"{f}:X"]) == 2
    f.write_text("SWEEP = dict(train=None, grid={}, colour='red')\n")
    assert main(["sweep", str(f)]) == 2
    err = capsys.readouterr().err
    assert "existing .py" in err and "neither SWEEP" in err and "unknown keys" in err


SMALL = (
    "import jax.numpy as jnp\n"
    "def train(hp, key):\n"
    "    return {'loss': (hp['a'] - 1.0) ** 2 + 0.0 * hp['seed'].astype(hp['a'].dtype)}\n"
    "SWEEP = dict(train=train, grid={'a': [0.0, 1.0, 3.0], 'seed': [0]})\n"
)


def _one_line_error(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("gradlab sweep: "), err
    return err


@pytest.fixture
def small(tmp_path):
    f = tmp_path / "small.py"
    f.write_text(SMALL)
    return f


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--precision", "foo"], "precision must be one of"),
        (["--set", "a=1e999"], r"grid\['a'\] must be finite"),
        (["--set", "seed=range(1,10,0)"], "step must not be zero"),
        (["--set", "seed=0.5"], "takes integers"),
        (["--chunk-size", "0"], "chunk_size must be a positive integer; got 0"),
        (["--chunk-size", "two"], "argument --chunk-size: invalid int value: 'two'"),
        (["--fresh"], "--fresh discards a checkpoint: use it with --checkpoint"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_exit_2_in_one_line(small, tmp_path, capsys, extra, match):
    argv = ["sweep", str(small), "--out", str(tmp_path / "o"), "--no-progress", *extra]
    assert main(argv) == 2
    assert re.search(match, _one_line_error(capsys))


def test_value_int32_cannot_hold_is_refused_without_x64(small, tmp_path, capsys):
    import jax

    with jax.enable_x64(False):
        code = main(["sweep", str(small), "--out", str(tmp_path / "o"), "--set", "seed=4294967296"])
    assert code == 2
    assert "does not fit int32" in _one_line_error(capsys)


def test_bad_file_out_and_checkpoint_exit_2(small, tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("import jax\nX = undefined_name\n")
    assert main(["sweep", str(bad)]) == 2
    assert f"{bad}:2: NameError" in _one_line_error(capsys)
    assert main(["sweep", str(tmp_path / "missing.py")]) == 2
    assert "existing .py file" in _one_line_error(capsys)
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    assert main(["sweep", str(small), "--out", str(a_file / "o"), "--no-progress"]) == 2
    assert "not writable" in _one_line_error(capsys)  # before the sweep, not after it
    out = ["--out", str(tmp_path / "o"), "--no-progress", "--checkpoint"]
    assert main(["sweep", str(small), *out]) == 0
    capsys.readouterr()
    assert main(["sweep", str(small), *out, "--set", "a=0,2"]) == 2
    err = _one_line_error(capsys)
    assert "different sweep" in err and "the grid" in err and "--fresh" in err
    assert main(["sweep", str(small), *out, "--set", "a=0,2", "--fresh"]) == 0
    with open(tmp_path / "o" / "table.csv") as fh:
        assert [float(r["a"]) for r in csv.DictReader(fh)] == [0.0, 2.0]


def test_ctrl_c_and_internal_errors(small, tmp_path, capsys, monkeypatch):
    import sys

    from gradlab.sweeps import SweepInterrupted

    def interrupted(*args, **kwargs):
        raise SweepInterrupted(8, 24, "DIR")

    monkeypatch.setattr(sys.modules["gradlab.sweeps"], "sweep", interrupted)
    assert main(["sweep", str(small), "--out", str(tmp_path / "o")]) == 130
    err = _one_line_error(capsys)
    assert "interrupted; 8 rows saved in DIR; rerun the same command to resume" in err

    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(sys.modules["gradlab.sweeps"], "sweep", crash)
    assert main(["sweep", str(small), "--out", str(tmp_path / "o")]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: a bug" in err


SLOW = (
    "import jax, jax.numpy as jnp\n"
    "def train(hp, key):\n"
    "    def step(w, _):\n"
    "        return w - hp['lr'] * jnp.sin(w), None\n"
    "    w, _ = jax.lax.scan(step, jnp.ones(64), None, length=20000)\n"
    "    return {'loss': w @ w}\n"
    "SWEEP = dict(train=train, grid={'lr': [0.001 * i for i in range(1, 257)]}, chunk_size=4)\n"
)


def test_real_ctrl_c_says_what_is_saved_without_a_traceback(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    f = tmp_path / "slow.py"
    f.write_text(SLOW)
    out = tmp_path / "o"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    argv = [sys.executable, "-m", "gradlab.cli", "sweep", str(f), "--out", str(out)]
    cmd = [*argv, "--checkpoint", "--no-progress"]
    with subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE) as p:  # closes the pipe
        deadline = time.monotonic() + 120
        while not list((out / "checkpoint").glob("rows_*.npz")):
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        err = p.stderr.read().decode()
        assert p.wait(timeout=120) == 130
    saved = len(list((out / "checkpoint").glob("rows_*.npz"))) * 4
    assert err == (
        f"gradlab sweep: interrupted; {saved} rows saved in {out / 'checkpoint'}; "
        "rerun the same command to resume\n"
    )


def test_invalid_rows_are_counted_and_never_the_best(tmp_path, capsys):
    # a negative learning rate is a flagged (invalid) run, not a diverged one; a grid of only
    # such runs has no best row, which is said, not raised
    f = tmp_path / "neg.py"
    f.write_text(
        "import jax.numpy as jnp, optax, gradlab\n"
        "from gradlab.derivations.mse import mse_mean\n"
        "X = jnp.linspace(0.0, 1.0, 8)[:, None]; Y = 2.0 * X[:, 0]\n"
        "P0 = {'w': jnp.zeros(1), 'b': jnp.zeros(())}\n"
        "def train(hp, key):\n"
        "    opt = gradlab.optim.with_learning_rate(optax.sgd, hp['lr'])\n"
        "    return gradlab.fit(mse_mean, P0, (X, Y), opt, 5)\n"
        "SWEEP = dict(train=train, grid={'lr': [0.1, -0.1]})\n"
    )
    argv = ["sweep", str(f), "--out", str(tmp_path / "o"), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 configurations" in printed and "0 diverged, 1 invalid" in printed
    assert "best: {'lr': 0.1," in printed
    with open(tmp_path / "o" / "table.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["invalid"] for r in rows] == ["False", "True"]
    assert "learning_rate must be > 0" in rows[1]["invalid_reason"]
    assert main([*argv[:-1], "--set", "lr=-0.1,-0.2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "0 diverged, 2 invalid" in printed and "best: none" in printed
