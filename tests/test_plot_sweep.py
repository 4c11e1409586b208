"""Sweep figures: files written (non-empty PNG), diverged runs dashed / marked, bound drawn."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gradlab.plot import (  # noqa: E402
    plot_divergence_frontier,
    plot_sweep_curves,
    plot_sweep_heatmap,
)
from gradlab.sweeps import sweep, sweep_quadratic  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def seed_sweep():
    x = np.linspace(0, 10, 80)
    X = np.c_[np.ones_like(x), x]
    y = 2.5 + 1.7 * x + np.random.default_rng(42).normal(0, 1.0, 80)
    grid = {"lr": [0.001, 0.01, 0.02, 0.028, 0.05, 0.2], "l2": [0.0, 0.5], "seed": [0, 1]}
    res = sweep_quadratic(X, y, grid, 60, progress=False)
    bound = 2 / np.linalg.eigvalsh(2 * X.T @ X / 80)[-1]
    return res, bound


def _png(path):
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 2000


def test_curves_coloured_and_dashed(seed_sweep, tmp_path):
    res, _ = seed_sweep
    fig = plot_sweep_curves(res, path=tmp_path / "curves.png")
    _png(tmp_path / "curves.png")
    ax = fig.axes[0]
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(ax.lines) == len(res) and len(dashed) == int(res.diverged.sum()) > 0
    colours = {tuple(ln.get_color()) for ln in ax.lines}
    assert len(colours) == 6  # one colour per learning rate
    assert ax.get_yscale() == "log"


def test_heatmap_marks_diverged_cells(seed_sweep, tmp_path):
    res, _ = seed_sweep
    fig = plot_sweep_heatmap(res, "lr", "l2", path=tmp_path / "heat.png")
    _png(tmp_path / "heat.png")
    ax = fig.axes[0]
    marks = ax.collections[0].get_offsets()
    lr, l2 = res.grid.values["lr"], res.grid.values["l2"]
    want = {(float(a), float(b)) for a, b, d in zip(lr, l2, res.diverged, strict=True) if d}
    assert len(marks) == len(want) > 0
    img = ax.images[0].get_array()
    assert img.shape == (2, 6) and int(np.ma.count_masked(img)) == len(want)


def test_frontier_straddles_the_bound(seed_sweep, tmp_path):
    res, bound = seed_sweep
    fig = plot_divergence_frontier(res, bound, path=tmp_path / "frontier.png")
    _png(tmp_path / "frontier.png")
    ax = fig.axes[0]
    vlines = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(vlines) == 1 and vlines[0].get_xdata()[0] == pytest.approx(bound)
    assert ax.get_xscale() == "log"


def test_errors(seed_sweep):
    res, _ = seed_sweep
    with pytest.raises(ValueError, match="no column 'beta'"):
        plot_sweep_curves(res, hparam="beta")
    with pytest.raises(ValueError, match="reduce must be"):
        plot_sweep_heatmap(res, reduce="sum")
    with pytest.raises(ValueError, match="two different grid names"):
        plot_sweep_heatmap(res, "lr", "lr")
    plain = sweep(lambda hp, key: {"loss": hp["lr"] * 2}, {"lr": [0.1, 0.2]}, progress=False)
    with pytest.raises(ValueError, match="record no 'loss' history"):
        plot_sweep_curves(plain)
