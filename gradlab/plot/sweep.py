r"""Figures of a ``SweepResult``: loss curves by learning rate, a heatmap over a 2-D grid, and the
divergence frontier against gradient descent's stability bound.

Curves and frontier show every grid axis: the colour (curves) or x axis (frontier) is one name,
and each combination of the other names with more than one value gets its own panel (``facet``),
except ``seed``, whose runs are replicates drawn together. Legends sit outside the data.

The frontier figure draws the bound of ``gradlab.train.stability`` eq. (2): on a quadratic
objective with Hessian :math:`H`, gradient descent converges iff

.. math::  0 < \alpha < 2 / \lambda_{\max}(H)                                             \tag{1}

so the sweep's empirical frontier (largest stable, smallest diverged learning rate) should
straddle the vertical line at :math:`2/\lambda_{\max}`.

matplotlib is imported on first use (the ``plot`` extra); without it every function raises a
``ModuleNotFoundError`` that says how to install it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gradlab import _validate as v
from gradlab.plot._mpl import new_axes, pyplot, save_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from gradlab import SweepResult


def _column(result, name: str) -> np.ndarray:
    table = result.table()
    if name not in table:
        raise ValueError(f"the sweep has no column {name!r}; its columns are {list(table)}")
    return np.asarray(table[name])


def _finish(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


def _headline(fig, panels, facet: tuple[str, ...], head: str) -> None:
    """``head`` over the whole figure when faceted, else as the lone panel's title."""
    if facet:
        fig.suptitle(head)
    else:
        panels[0][0].set_title(head)


REPLICATE_AXES = ("seed",)
MAX_PANELS = 36


def facet_names(
    result: SweepResult, shown: str, facet: str | Sequence[str] | None, ax
) -> tuple[str, ...]:
    """The grid names that split the figure into panels (see the module docstring)."""
    names = tuple(result.grid.names)
    if facet is None:
        if ax is not None:
            return ()
        return tuple(
            k
            for k in names
            if k != shown and k not in REPLICATE_AXES and np.unique(result.grid.values[k]).size > 1
        )
    facet = (facet,) if isinstance(facet, str) else tuple(facet)
    unknown = [k for k in facet if k not in names or k == shown]
    if unknown:
        raise ValueError(f"facet must name grid axes other than {shown!r} {names}; got {unknown}")
    if facet and ax is not None:
        raise ValueError(f"facet={facet} draws several panels: pass ax=None, or facet=()")
    return facet


def facet_panels(result: SweepResult, facet: tuple[str, ...], ax, panel_size=(5.0, 3.6)):
    """``(fig, [(axes, row mask, panel title), ...])``: one panel per combination of ``facet``."""
    n = len(result)
    if not facet:
        fig, ax = new_axes(ax)
        return fig, [(ax, np.ones(n, bool), "")]
    levels = [np.unique(result.grid.values[k]) for k in facet]
    combos = [
        c
        for c in itertools.product(*levels)
        if np.any(np.all([result.grid.values[k] == v for k, v in zip(facet, c, strict=True)], 0))
    ]
    if len(combos) > MAX_PANELS:
        raise ValueError(
            f"facet {facet} gives {len(combos)} panels (at most {MAX_PANELS}): pass facet= with "
            "fewer names, or facet=() for one panel"
        )
    ncols = min(len(combos), len(levels[-1]) if len(facet) == 2 else 3)
    nrows = -(-len(combos) // ncols)
    plt = pyplot()
    fig, grid = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    axes = list(grid.ravel())
    for axis in axes[len(combos) :]:
        axis.set_visible(False)
    panels = []
    for axis, combo in zip(axes, combos, strict=False):
        mask = np.all([result.grid.values[k] == v for k, v in zip(facet, combo, strict=True)], 0)
        label = ", ".join(f"{k}={float(v):.3g}" for k, v in zip(facet, combo, strict=True))
        panels.append((axis, mask, label))
    return fig, panels


def _legend_outside(fig, panels) -> None:
    """One legend for every panel's labelled artists, right of the panels, clear of the data."""
    entries: dict[str, Any] = {}
    for axis, _, _ in panels:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if not entries:
        return
    handles, labels = list(entries.values()), list(entries)
    if fig.get_layout_engine() is not None and len(panels) > 1:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    else:
        panels[0][0].legend(
            handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8
        )


def plot_sweep_curves(
    result: SweepResult,
    *,
    hparam: str = "lr",
    metric: str = "loss",
    logy: bool = True,
    facet: str | Sequence[str] | None = None,
    title: str = "",
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """One history curve per configuration, coloured by ``hparam`` on a log colour scale, one
    panel per value of every other grid axis; diverged runs dashed (drawn up to their last finite
    value).

    Args:
      result: a ``SweepResult`` whose ``history`` holds ``metric`` (e.g. a ``gradlab.fit`` or
        ``sweep_quadratic`` sweep).
      hparam: the grid name that sets the colour (positive values: log scale).
      metric: the history to draw.
      logy: logarithmic metric axis.
      facet: grid names that split the figure into panels. Default: every name other than
        ``hparam`` and ``seed`` with more than one value (none when ``ax`` is given); ``()`` for
        one panel holding every run.
      title: text.
      ax: draw into these axes (one panel).
      path: also save the figure there (PNG).

    Returns:
      The matplotlib figure.
    """
    hist = result.history.get(metric)
    if hist is None:
        raise ValueError(
            f"the sweep's outputs record no {metric!r} history; histories: {list(result.history)}"
        )
    values = _column(result, hparam).astype(float)
    facet = facet_names(result, hparam, facet, ax)
    plt = pyplot()
    from matplotlib.colors import LogNorm, Normalize

    positive = np.all(values > 0)
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        lo, hi = (lo / 2, hi * 2) if positive else (lo - 1, hi + 1)
    norm = LogNorm(lo, hi) if positive else Normalize(lo, hi)
    cmap = plt.get_cmap("viridis")
    steps = result.history_steps
    hist = np.asarray(hist, dtype=float)
    x = np.asarray(steps, float) if steps is not None else np.arange(1, hist.shape[1] + 1.0)
    fig, panels = facet_panels(result, facet, ax)
    div = result.diverged
    for axis, mask, label in panels:
        for i in np.argsort(values, kind="stable"):
            if not mask[i]:
                continue
            y = hist[i].copy()
            bad = ~np.isfinite(y)
            if bad.any():
                y[np.argmax(bad) :] = np.nan
            color = cmap(norm(values[i]))
            axis.plot(x, y, color=color, lw=1.0, ls="--" if div[i] else "-", alpha=0.85)
        if logy:
            axis.set_yscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel(metric)
        axis.grid(True, alpha=0.3)
        if label:
            axis.set_title(f"{label}: {int(mask.sum())} runs, {int(div[mask].sum())} diverged")
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=[a for a, _, _ in panels], label=hparam + (" (log)" if positive else ""))
    n_div = int(np.sum(div))
    head = title or f"{metric} by {hparam}: {len(values)} runs, {n_div} diverged (dashed)"
    _headline(fig, panels, facet, head)
    return _finish(fig, path)


def _axis_values(result, name):
    col = _column(result, name)
    uniq = np.unique(col)
    return col, uniq


def plot_sweep_heatmap(
    result: SweepResult,
    x: str = "lr",
    y: str = "l2",
    *,
    metric: str = "loss",
    reduce: str = "mean",
    log: bool = True,
    title: str = "",
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Final ``metric`` over the grid of ``x`` by ``y`` as a heatmap; cells with a diverged run
    are grey and marked with a cross.

    Configurations that share an ``(x, y)`` cell (other grid names such as ``seed``) are combined
    with ``reduce`` (``"mean"``, ``"median"``, ``"min"`` or ``"max"``) over their non-diverged
    runs.

    Returns:
      The matplotlib figure.
    """
    reducers: dict[str, Callable[..., Any]] = {
        "mean": np.mean,
        "median": np.median,
        "min": np.min,
        "max": np.max,
    }
    v.check_choice("reduce", reduce, sorted(reducers))
    if x == y:
        raise ValueError(f"x and y must be two different grid names; got {x!r} twice")
    xc, xs = _axis_values(result, x)
    yc, ys = _axis_values(result, y)
    vals = _column(result, metric).astype(float)
    div = result.diverged
    Z = np.full((len(ys), len(xs)), np.nan)
    D = np.zeros((len(ys), len(xs)), bool)
    for iy, yv in enumerate(ys):
        for ix, xv in enumerate(xs):
            m = (xc == xv) & (yc == yv)
            if not m.any():
                continue
            D[iy, ix] = bool(div[m].any())
            ok = m & ~div & np.isfinite(vals)
            if ok.any():
                Z[iy, ix] = reducers[reduce](vals[ok])
    plt = pyplot()
    from matplotlib.colors import LogNorm

    fig, ax = new_axes(ax)
    finite = Z[np.isfinite(Z)]
    norm = LogNorm() if log and finite.size and np.all(finite > 0) else None
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.8")
    mesh = ax.imshow(np.ma.masked_invalid(Z), origin="lower", aspect="auto", cmap=cmap, norm=norm)
    fig.colorbar(mesh, ax=ax, label=f"final {metric} ({reduce})")
    rows, cols = np.nonzero(D)
    ax.scatter(cols, rows, marker="x", color="red", s=40, label="diverged")
    ax.set_xticks(range(len(xs)), [f"{v:.3g}" for v in xs], rotation=60, fontsize=7)
    ax.set_yticks(range(len(ys)), [f"{v:.3g}" for v in ys], fontsize=7)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    marked = ", red x: a run diverged" if D.any() else ""
    ax.set_title(title or f"final {metric} over {x} x {y}{marked}")
    return _finish(fig, path)


def plot_divergence_frontier(
    result: SweepResult,
    bound: float | None = None,
    *,
    hparam: str = "lr",
    metric: str = "loss",
    facet: str | Sequence[str] | None = None,
    title: str = "",
    ax: Axes | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Final ``metric`` against ``hparam`` (log axis), diverged runs as red crosses on top, the
    empirical frontier shaded, and the stability bound ``2 / lambda_max`` of eq. (1) as a
    vertical line; one panel (one frontier) per value of every other grid axis.

    Args:
      result: a ``SweepResult``.
      bound: the predicted largest stable learning rate, e.g.
        ``gradlab.train.max_stable_lr(loss, params, *data)``; ``None`` draws no line.
      hparam, metric: the grid name on the x axis, the column on the y axis.
      facet: grid names that split the figure into panels, as in :func:`plot_sweep_curves`
        (default: every other name but ``seed`` with more than one value).
      title, ax, path: as in :func:`plot_sweep_curves`.

    Returns:
      The matplotlib figure.
    """
    xs = _column(result, hparam).astype(float)
    vals = _column(result, metric).astype(float)
    facet = facet_names(result, hparam, facet, ax)
    div = result.diverged
    fig, panels = facet_panels(result, facet, ax)
    for axis, mask, label in panels:
        _frontier_panel(axis, xs[mask], vals[mask], div[mask], bound)
        axis.set_xlabel(hparam)
        axis.set_ylabel(f"final {metric}")
        if label:
            axis.set_title(label)
    _legend_outside(fig, panels)
    head = title or f"divergence frontier in {hparam}"
    _headline(fig, panels, facet, head)
    return _finish(fig, path)


def _frontier_panel(ax, xs, vals, div, bound) -> None:
    ok = ~div & np.isfinite(vals)
    ax.scatter(xs[ok], vals[ok], s=14, color="tab:blue", label="converged / stable")
    if ok.any():
        top = float(np.nanmax(vals[ok]))
        ymark = top * 3 if top > 0 else top + 1
    else:
        ymark = 1.0
    if div.any():
        ax.scatter(
            xs[div], np.full(int(div.sum()), ymark), marker="x", color="red", s=30, label="diverged"
        )
    if ok.any() and div.any():
        lo, hi = float(xs[ok].max()), float(xs[div].min())
        if lo < hi:
            ax.axvspan(lo, hi, color="orange", alpha=0.2, label="empirical frontier")
    if bound is not None:
        ax.axvline(float(bound), color="k", ls="--", label=f"2/lambda_max = {float(bound):.4g}")
    if np.all(xs > 0):
        ax.set_xscale("log")
    if ok.any() and np.all(vals[ok] > 0):
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)


__all__ = ["plot_divergence_frontier", "plot_sweep_curves", "plot_sweep_heatmap"]
