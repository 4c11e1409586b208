"""A 2-parameter loss landscape: contour (and optionally a 3-D surface) with optimizer paths."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from gradlab.plot._mpl import pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike


def plot_landscape(
    xs: ArrayLike,
    ys: ArrayLike,
    Z,
    *,
    paths: Mapping[str, np.ndarray] | None = None,
    marks: Mapping[str, tuple[float, float]] | None = None,
    xlabel: str = "theta0",
    ylabel: str = "theta1",
    title: str = "",
    levels: int = 30,
    surface: bool = False,
) -> Figure:
    """Contour of ``Z`` over the grid ``xs x ys``, with paths and marked points drawn on it.

    Args:
      xs: ``(nx,)`` values of the first parameter (horizontal axis).
      ys: ``(ny,)`` values of the second parameter (vertical axis).
      Z: ``(ny, nx)`` loss values, ``Z[i, j] = loss(xs[j], ys[i])`` (``meshgrid`` order).
      paths: ``{label: (k, 2) array}`` parameter iterates ``(x, y)``, drawn as lines with dots.
      marks: ``{label: (x, y)}`` single points (a closed-form optimum), drawn as crosses.
      xlabel, ylabel, title: text.
      levels: the number of contour levels (spaced on a square-root scale, so the bowl's floor
        is resolved).
      surface: add a 3-D surface panel on the left, as seed 003 draws it.

    Returns:
      The matplotlib figure.
    """
    xs, ys, Z = (np.asarray(a, dtype=float) for a in (xs, ys, Z))
    if xs.ndim != 1 or ys.ndim != 1 or Z.shape != (ys.shape[0], xs.shape[0]):
        raise ValueError(
            f"Z must have shape (len(ys), len(xs)) = {(ys.shape[0], xs.shape[0])}; "
            f"got xs {xs.shape}, ys {ys.shape}, Z {Z.shape}"
        )
    paths = {k: np.asarray(p, dtype=float) for k, p in (paths or {}).items()}
    for label, p in paths.items():
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError(f"paths[{label!r}] must have shape (k, 2); got {p.shape}")
    zmin, zmax = float(np.nanmin(Z)), float(np.nanmax(Z))
    if not np.isfinite(zmin) or not np.isfinite(zmax) or not zmax > zmin:
        raise ValueError(
            f"Z must hold finite values that vary (contour levels need a range); got min {zmin}, "
            f"max {zmax}"
        )
    plt = pyplot()
    X, Y = np.meshgrid(xs, ys)
    lv = zmin + (zmax - zmin) * np.linspace(0.0, 1.0, levels + 1)[1:] ** 2
    if surface:
        fig = plt.figure(figsize=(13.0, 5.0))
        ax3 = fig.add_subplot(1, 2, 1, projection="3d")
        ax3.plot_surface(X, Y, Z, cmap="viridis", alpha=0.8, linewidth=0)
        ax3.set_xlabel(xlabel)
        ax3.set_ylabel(ylabel)
        ax3.set_zlabel("loss")
        ax = fig.add_subplot(1, 2, 2)
    else:
        fig, ax = plt.subplots(figsize=(7.0, 5.0))
    cs = ax.contour(X, Y, Z, levels=lv, cmap="viridis", linewidths=0.8)
    fig.colorbar(cs, ax=ax, label="loss")
    for label, p in paths.items():
        p = p[np.all(np.isfinite(p), axis=1)]
        line = ax.plot(p[:, 0], p[:, 1], marker="o", markersize=2.5, linewidth=1.0, label=label)
        if p.shape[0]:
            ax.plot(p[0, 0], p[0, 1], marker="s", color=line[0].get_color())
            if surface:
                iz = [_interp(xs, ys, Z, a, b) for a, b in p]
                ax3.plot(p[:, 0], p[:, 1], iz, color=line[0].get_color(), marker="o", markersize=2)
    for label, (a, b) in (marks or {}).items():
        ax.plot([a], [b], marker="x", markersize=10, mew=2, linestyle="none", label=label)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if paths or marks:
        ax.legend(fontsize=8)
    return fig


def _interp(xs, ys, Z, a, b) -> float:
    """Nearest grid value of ``Z`` at ``(a, b)`` (for drawing a path on the 3-D surface)."""
    j = int(np.clip(np.searchsorted(xs, a), 0, xs.shape[0] - 1))
    i = int(np.clip(np.searchsorted(ys, b), 0, ys.shape[0] - 1))
    return float(Z[i, j])
