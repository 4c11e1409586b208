"""``gradlab sweep``: the example file runs, --set overrides parse without eval, files written."""

from __future__ import annotations

import csv
import json
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
