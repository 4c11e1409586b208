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
    fig = plot_sweep_curves(res, path=tmp_path / "curves.png", facet=())
    _png(tmp_path / "curves.png")
    ax = fig.axes[0]
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(ax.lines) == len(res) and len(dashed) == int(res.diverged.sum()) > 0
    colours = {tuple(ln.get_color()) for ln in ax.lines}
    assert len(colours) == 6  # one colour per learning rate
    assert ax.get_yscale() == "log"


def test_curves_and_frontier_show_every_grid_axis(seed_sweep):
    """lr x l2 x seed: one panel per l2 value (seeds drawn together), each with its own runs."""
    res, bound = seed_sweep
    l2 = res.grid.values["l2"]
    for fig in (plot_sweep_curves(res), plot_divergence_frontier(res, bound)):
        panels = [a for a in fig.axes if a.get_title().startswith("l2=")]
        assert [a.get_title().split(":")[0] for a in panels] == ["l2=0", "l2=0.5"]
    curves = plot_sweep_curves(res)
    for ax, value in zip(curves.axes[:2], (0.0, 0.5), strict=True):
        mask = l2 == value
        assert len(ax.lines) == int(mask.sum()) == 12
        assert sum(ln.get_linestyle() == "--" for ln in ax.lines) == int(res.diverged[mask].sum())
    frontier = plot_divergence_frontier(res, bound)
    for ax, value in zip(frontier.axes[:2], (0.0, 0.5), strict=True):
        mask = l2 == value
        points = sum(len(c.get_offsets()) for c in ax.collections if c.get_offsets().size)
        assert points == int(mask.sum())
    with pytest.raises(ValueError, match="facet must name grid axes other than 'lr'"):
        plot_sweep_curves(res, facet="lr")


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("facet", [None, ()])
def test_legends_do_not_cover_data(seed_sweep, facet):
    res, bound = seed_sweep
    for fig in (
        plot_divergence_frontier(res, bound, facet=facet),
        plot_sweep_heatmap(res, "lr", "l2"),
    ):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        legends = [*fig.legends, *(a.get_legend() for a in fig.axes if a.get_legend())]
        data = [a.get_window_extent(renderer) for a in fig.axes if a.has_data()]
        for legend in legends:
            box = legend.get_window_extent(renderer)
            assert not any(_overlaps(box, d) for d in data), legend


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
