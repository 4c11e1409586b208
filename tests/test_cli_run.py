"""``gradlab run``: listing, locating the experiments folder, running one, exit statuses.

Fast: the experiments used here are tiny fakes written into a temporary folder (no jax work);
the real experiments run in ``test_experiments.py``.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from gradlab.cli import main
from gradlab.cli import run as cli_run

EXPECTED = {
    "linreg_gd",
    "regularized_regression",
    "mirage",
    "histogram_softmax",
    "logistic_mixture",
    "linreg_diagnostics",
    "hypergrad_seed001",
    "custom_rules",
}


def _fake(tmp_path, name="toy", checks_ok=True, pkg="fake_experiments"):
    d = tmp_path / pkg
    d.mkdir(exist_ok=True)
    (d / "__init__.py").write_text("")
    (d / "_helper.py").write_text("VALUE = 3\n")
    (d / f"{name}.py").write_text(
        textwrap.dedent(
            f'''\
            """A toy experiment for the CLI tests.

            Command: gradlab run {name}
            """
            import json
            from pathlib import Path

            from ._helper import VALUE

            SUMMARY_KEYS = ["value", "quick"]


            def run(quick=False, out_dir="results/{name}"):
                out = Path(out_dir)
                out.mkdir(parents=True, exist_ok=True)
                m = {{"value": VALUE, "quick": quick, "checks": {{"holds": {checks_ok}}}}}
                (out / "metrics.json").write_text(json.dumps(m))
                return m
            '''
        )
    )
    (d / "not_an_experiment.py").write_text('"""No run function here."""\nX = 1\n')
    return d


def test_list_shows_every_experiment(capsys):
    assert main(["run", "--list"]) == 0
    out = capsys.readouterr().out
    names = {line.split()[0] for line in out.strip().splitlines()}
    assert names == EXPECTED
    assert "seed 002" in out.lower() or "gradient descent" in out.lower()


def test_list_reads_docstrings_without_importing(tmp_path, capsys):
    d = _fake(tmp_path)
    (d / "broken.py").write_text(
        '"""Would fail on import."""\nraise RuntimeError\ndef run(): ...\n'
    )
    assert main(["run", "--list", "--experiments-dir", str(d)]) == 0
    out = capsys.readouterr().out
    assert "toy" in out and "broken" in out and "not_an_experiment" not in out
    assert "A toy experiment for the CLI tests." in out


def test_run_writes_results_and_prints_summary(tmp_path, capsys):
    d = _fake(tmp_path)
    out = tmp_path / "results"
    assert main(["run", "toy", "--quick", "--out", str(out), "--experiments-dir", str(d)]) == 0
    metrics = json.loads((out / "toy" / "metrics.json").read_text())
    assert metrics == {"value": 3, "quick": True, "checks": {"holds": True}}
    text = capsys.readouterr().out
    assert "toy (quick)" in text and "value" in text and "[ok] holds" in text


def test_failed_check_exits_1(tmp_path, capsys):
    d = _fake(tmp_path, name="bad", checks_ok=False, pkg="fake_bad_experiments")
    code = main(["run", "bad", "--out", str(tmp_path / "r"), "--experiments-dir", str(d)])
    assert code == 1
    assert "[FAILED] holds" in capsys.readouterr().out


def test_unknown_name_and_no_name_exit_2(tmp_path, capsys):
    d = _fake(tmp_path)
    assert main(["run", "nope", "--experiments-dir", str(d)]) == 2
    assert "unknown experiment(s) nope; known: toy" in capsys.readouterr().err
    assert main(["run", "--experiments-dir", str(d)]) == 2
    assert "--list" in capsys.readouterr().err


def test_missing_folder_names_where_it_looked(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "nowhere"
    assert main(["run", "--list", "--experiments-dir", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "--experiments-dir" in err
    monkeypatch.setenv(cli_run.ENV_VAR, str(missing))
    with pytest.raises(FileNotFoundError, match=cli_run.ENV_VAR):
        cli_run.find_experiments_dir()


def test_env_var_locates_the_folder(tmp_path, monkeypatch):
    d = _fake(tmp_path)
    monkeypatch.setenv(cli_run.ENV_VAR, str(d))
    assert cli_run.find_experiments_dir() == d.resolve()
    assert set(cli_run.list_experiments(d)) == {"toy"}


def test_default_is_the_checkout_experiments_folder():
    d = cli_run.find_experiments_dir()
    assert d.name == "experiments" and (d.parent / "gradlab").is_dir()
    assert set(cli_run.list_experiments(d)) == EXPECTED


def test_format_summary():
    text = cli_run.format_summary(
        {"a": 1.23456789, "b": [1, 2], "c": "x", "checks": {"p": True, "q": False}}
    )
    assert "1.23457" in text and "b" not in text.split("\n")[1] and "[FAILED] q" in text


def test_experiments_run_in_float64():
    import subprocess
    import sys

    code = "import experiments, jax; print(jax.config.jax_enable_x64)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=cli_run.find_experiments_dir().parent,
    )
    assert out.stdout.strip() == "True"


def _one_line_error(capsys, prog="gradlab run"):
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith(f"{prog}: "), err
    return err


def test_usage_errors_are_one_line_exit_2(tmp_path, capsys):
    d = _fake(tmp_path)
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for argv, match in [
        (["run", "toy", "--out", str(a_file / "r"), "--experiments-dir", str(d)], "not writable"),
        (["run", "--bogus"], "unrecognized arguments: --bogus"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ]:
        assert main(argv) == 2, argv
        assert match in _one_line_error(capsys, "gradlab run" if argv[0] == "run" else "gradlab")
    assert not (a_file / "r").exists()


def test_internal_error_is_the_only_traceback_exit_3(tmp_path, capsys):
    d = _fake(tmp_path, name="crash", pkg="fake_crash_experiments")
    (d / "crash.py").write_text("def run(quick=False, out_dir=None):\n    return 1 / 0\n")
    assert main(["run", "crash", "--out", str(tmp_path / "r"), "--experiments-dir", str(d)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err and "internal error" in err


def test_broken_pipe_is_silent(tmp_path):
    import subprocess
    import sys

    d = tmp_path / "many"
    d.mkdir()
    (d / "__init__.py").write_text("")
    for i in range(800):  # more than a pipe buffer (64 KiB) of listing
        (d / f"experiment_{i:04d}.py").write_text(
            f'"""Experiment {i} {"x" * 80}."""\ndef run(): ...\n'
        )
    p = subprocess.Popen(
        [sys.executable, "-m", "gradlab.cli", "run", "--list", "--experiments-dir", str(d)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    p.stdout.read(100)  # `| head -c 100`
    p.stdout.close()
    err = p.stderr.read().decode()
    p.stderr.close()  # an unclosed pipe is a ResourceWarning, an error under filterwarnings
    assert p.wait(timeout=120) == 141 and err == "", err


def test_version(capsys):
    import gradlab

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith(f"gradlab {gradlab.__version__} (jax ")
