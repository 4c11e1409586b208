r"""Log-log convergence plots: error against iteration (or step size), with fitted slopes.

A rate :math:`e_k \approx C k^{p}` is a line of slope :math:`p` on log-log axes; its slope over a
window :math:`k_1 \le k \le k_2` is the least-squares fit

.. math::  p = \operatorname*{arg\,min}_{p, c} \sum_{k_1 \le k \le k_2}
           \big(\log e_k - c - p \log k\big)^2                                             \tag{1}

(ISTA: :math:`p \approx -1`; FISTA: :math:`p \approx -2`; a central difference's truncation
error against its step: :math:`p \approx 2`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from gradlab.plot._mpl import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike


def _pair(name: str, x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"{name}: x and y must be 1-d arrays of the same shape; got {x.shape} and {y.shape}"
        )
    return x, y


def loglog_slope(x: ArrayLike, y: ArrayLike, lo: float, hi: float) -> float:
    """The least-squares slope of ``log y`` against ``log x`` over ``lo <= x <= hi``, eq. (1).

    Args:
      x: positive abscissae (iterations, step sizes), 1-d.
      y: the errors, 1-d, same shape; every value in the window must be positive and finite.
      lo, hi: the window, ``0 < lo < hi``; it must hold at least 3 points.

    Returns:
      The slope :math:`p` of eq. (1), a float.

    Examples:
      >>> import numpy as np
      >>> k = np.arange(1.0, 101.0)
      >>> round(loglog_slope(k, 3.0 / k**2, 10, 100), 12)
      -2.0
    """
    x, y = _pair("loglog_slope", x, y)
    if not 0 < lo < hi:
        raise ValueError(f"the window must satisfy 0 < lo < hi; got lo={lo}, hi={hi}")
    sel = (x >= lo) & (x <= hi)
    if sel.sum() < 3:
        raise ValueError(
            f"the window [{lo}, {hi}] holds {int(sel.sum())} point(s) of x; at least 3 are needed"
        )
    ys = y[sel]
    if not np.all(np.isfinite(ys)) or np.any(ys <= 0):
        bad = int(np.argmax(~np.isfinite(ys) | (ys <= 0)))
        raise ValueError(
            f"y must be positive and finite in the window [{lo}, {hi}]; got {ys[bad]} at "
            f"x={x[sel][bad]}"
        )
    slope, _ = np.polyfit(np.log(x[sel]), np.log(ys), 1)  # (1)
    return float(slope)


def plot_convergence(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    slopes: Mapping[str, tuple[float, float]] | None = None,
    guides: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    marks: Mapping[str, tuple[float, float]] | None = None,
    title: str = "",
    xlabel: str = "iteration k",
    ylabel: str = "error",
    ax: Axes | None = None,
) -> Figure:
    """Draw named error curves on log-log axes, with fitted slopes, guide lines and marks.

    Args:
      curves: ``{label: (x, y)}``; non-positive or non-finite values are left out of the view.
      slopes: ``{label: (lo, hi)}``: fit eq. (1) to that curve over the window, draw the fitted
        line over it (dotted) and append ``slope p`` to the label.
      guides: ``{label: (x, y)}``: reference lines (bounds, model curves), grey, one dash style
        each.
      marks: ``{label: (x, y)}``: single points (an optimum), drawn as markers.
      title, xlabel, ylabel: text.
      ax: draw into these axes instead of a new figure.

    Returns:
      The matplotlib figure.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"curves must be a non-empty mapping label -> (x, y); got {curves!r:.80}")
    slopes = dict(slopes or {})
    unknown = sorted(set(slopes) - set(curves))
    if unknown:
        raise ValueError(f"slopes names curves that are not drawn: {unknown}; have {list(curves)}")
    fig, ax = new_axes(ax)
    for label, (x_given, y_given) in curves.items():
        x, y = _pair(label, x_given, y_given)
        keep = np.isfinite(y) & (y > 0) & (x > 0)
        text = label
        if label in slopes:
            lo, hi = slopes[label]
            p = loglog_slope(x, y, lo, hi)
            sel = keep & (x >= lo) & (x <= hi)
            c = np.mean(np.log(y[sel]) - p * np.log(x[sel]))
            text = f"{label}: slope {p:+.2f} on [{lo:.3g}, {hi:.3g}]"
            (line,) = ax.loglog(x[keep], y[keep], label=text)
            xs = np.array([lo, hi], dtype=float)
            ax.loglog(xs, np.exp(c) * xs**p, ":", color=line.get_color(), lw=3, alpha=0.6)
        else:
            ax.loglog(x[keep], y[keep], label=text)
    styles = ("--", "-.", (0, (1, 1)), (0, (5, 1, 1, 1, 1, 1)))
    for i, (label, (x_given, y_given)) in enumerate((guides or {}).items()):
        x, y = _pair(label, x_given, y_given)
        keep = np.isfinite(y) & (y > 0) & (x > 0)
        ax.loglog(x[keep], y[keep], linestyle=styles[i % 4], color="0.4", lw=1, label=label)
    for label, (x_mark, y_mark) in (marks or {}).items():
        ax.loglog([x_mark], [y_mark], "o", ms=7, mfc="none", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8)
    return fig
