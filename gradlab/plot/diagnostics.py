"""Regression diagnostics (seed 003): data with fitted curves, and a residual panel."""

from __future__ import annotations

from collections.abc import Mapping
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from gradlab.plot._mpl import new_axes, pyplot

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike


def plot_fits(
    x: ArrayLike,
    y: ArrayLike,
    fits: Mapping[str, np.ndarray],
    *,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Scatter ``(x, y)``; draw each model's predictions ``{label: yhat}`` as a line over ``x``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-d of one shape; got {x.shape} and {y.shape}")
    fig, ax = new_axes(ax)
    order = np.argsort(x)
    ax.scatter(x, y, s=14, color="0.4", label="data")
    for label, yhat in fits.items():
        yhat = np.asarray(yhat, dtype=float)
        if yhat.shape != x.shape:
            raise ValueError(f"fits[{label!r}] must have shape {x.shape}; got {yhat.shape}")
        ax.plot(x[order], yhat[order], linewidth=1.8, label=label)
    ax.set_title(title)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_residuals(
    fitted: ArrayLike,
    residuals: ArrayLike,
    *,
    x: ArrayLike | None = None,
    title: str = "Residual diagnostics",
) -> Figure:
    """Four panels: residuals against fitted values, against ``x`` (or the index), their
    histogram, and a normal Q-Q plot.

    A structure in the first two panels (a curve, a funnel) is the under-fitting or
    heteroscedasticity that seed 003 asks the reader to look for.

    Returns:
      The matplotlib figure.
    """
    fitted, r = np.asarray(fitted, dtype=float), np.asarray(residuals, dtype=float)
    if r.ndim != 1 or fitted.shape != r.shape:
        raise ValueError(
            f"fitted and residuals must be 1-d of one shape; got {fitted.shape} and {r.shape}"
        )
    n = r.shape[0]
    xv = np.arange(n, dtype=float) if x is None else np.asarray(x, dtype=float)
    if xv.shape != r.shape:
        raise ValueError(f"x must have shape {r.shape}; got {xv.shape}")
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10.0, 7.5))
    (a, b), (c, q) = axes
    a.scatter(fitted, r, s=12)
    a.axhline(0.0, color="black", linestyle="--", linewidth=1)
    a.set_xlabel("fitted value")
    a.set_ylabel("residual y - yhat")
    a.set_title("residuals vs fitted")
    b.scatter(xv, r, s=12)
    b.axhline(0.0, color="black", linestyle="--", linewidth=1)
    b.set_xlabel("x" if x is not None else "sample index")
    b.set_title("residuals vs " + ("x" if x is not None else "index"))
    c.hist(r, bins=max(5, int(np.sqrt(n))), color="C0", alpha=0.8)
    c.set_xlabel("residual")
    c.set_title("histogram")
    z = np.array([NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)])
    s = np.sort(r)
    q.scatter(z, s, s=12)
    sd = float(np.std(r, ddof=1)) if n > 1 else 1.0
    q.plot(z, np.mean(r) + sd * z, color="black", linewidth=1)
    q.set_xlabel("normal quantile")
    q.set_ylabel("ordered residual")
    q.set_title("normal Q-Q")
    for axis in axes.ravel():
        axis.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
