"""The experiments' plot helpers: figures drawn and saved, bad input named, matplotlib optional."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from gradlab import plot  # noqa: E402
from gradlab.plot import _mpl  # noqa: E402


def _saved(fig, tmp_path, name="f.png"):
    path = plot.save_figure(fig, tmp_path / name)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def test_curves_mark_divergence(tmp_path):
    fig = plot.plot_curves(
        {"ok": [3.0, 2.0, 1.0], "bad": ([1, 2, 3], [1.0, np.inf, np.inf])},
        logy=True,
        hline=(0.5, "optimum"),
    )
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "bad (diverged at step 2)" in labels and "optimum" in labels
    _saved(fig, tmp_path)


def test_save_is_deterministic(tmp_path):
    a = _saved(plot.plot_curves({"x": [1.0, 2.0]}), tmp_path, "a.png")
    b = _saved(plot.plot_curves({"x": [1.0, 2.0]}), tmp_path, "b.png")
    assert a.read_bytes() == b.read_bytes()


def test_landscape_weights_density_diagnostics(tmp_path):
    xs, ys = np.linspace(-1, 1, 5), np.linspace(0, 2, 4)
    Z = np.add.outer(ys**2, xs**2)
    fig = plot.plot_landscape(
        xs, ys, Z, paths={"gd": np.array([[1.0, 2.0], [0.5, 1.0]])}, marks={"min": (0, 0)}
    )
    _saved(fig, tmp_path, "l.png")
    _saved(plot.plot_landscape(xs, ys, Z, surface=True), tmp_path, "s.png")
    _saved(plot.plot_weights({"a": [1.0, -1.0], "b": [0.5, 0.0]}), tmp_path, "w.png")
    _saved(plot.plot_bars({"loop": 1.0, "numpy": 0.01}, logy=True), tmp_path, "b.png")
    _saved(
        plot.plot_densities(
            np.array([0, 1, 1, 2]), {"fit": [0.25, 0.5, 0.25]}, components={"c": [0.1, 0.2, 0.1]}
        ),
        tmp_path,
        "d.png",
    )
    x = np.linspace(0, 1, 20)
    _saved(plot.plot_fits(x, 2 * x, {"line": 2 * x}), tmp_path, "f.png")
    _saved(plot.plot_residuals(2 * x, np.sin(9 * x), x=x), tmp_path, "r.png")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: plot.plot_curves({}), "curves must be a non-empty mapping"),
        (lambda: plot.plot_curves({"a": ([1, 2], [1.0])}), r"equal 1-d shapes; got shapes \(2,\)"),
        (lambda: plot.plot_landscape([0, 1], [0, 1, 2], np.zeros((2, 2))), r"Z must have shape"),
        (
            lambda: plot.plot_landscape([0, 1], [0, 1], np.eye(2), paths={"p": [1, 2]}),
            r"paths\['p'\] must have shape \(k, 2\)",
        ),
        (lambda: plot.plot_landscape([0, 1], [0, 1], np.ones((2, 2))), "Z must hold finite"),
        (lambda: plot.plot_weights({"a": [1, 2], "b": [1]}), "one 1-d shape"),
        (lambda: plot.plot_weights({"a": [1, 2]}, feature_names=["x"]), "2 entries; got 1"),
        (lambda: plot.plot_densities([0.5, 1.0], {"p": [1.0]}), "integer array"),
        (lambda: plot.plot_densities(np.array([0, 3]), {"p": [0.5, 0.5]}), r"lie in \[0, 1\]"),
        (
            lambda: plot.plot_densities(np.array([0, 1]), {"p": [0.5, 0.5], "q": [1.0]}),
            r"densities\['q'\] must have shape \(2,\)",
        ),
        (lambda: plot.plot_fits([1, 2], [1, 2, 3], {}), "one shape"),
        (lambda: plot.plot_residuals([1.0, 2.0], [0.1, 0.2], x=[1.0]), r"x must have shape"),
        (lambda: plot.plot_bars({}), "non-empty mapping"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'gradlab\[plot\]'"):
        _mpl.pyplot()


def test_gradlab_import_does_not_load_matplotlib():
    import subprocess

    code = "import gradlab, gradlab.plot, sys; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
