"""Loss curves: several named runs on one axes, diverged runs marked where they left the plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from gradlab.plot._mpl import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _xy(curve) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(curve, tuple) and len(curve) == 2:
        x, y = (np.asarray(c, dtype=float) for c in curve)
    else:
        y = np.asarray(curve, dtype=float)
        x = np.arange(y.shape[0], dtype=float)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            "each curve must be a 1-d array of values or a (steps, values) pair of equal 1-d "
            f"shapes; got shapes {x.shape} and {y.shape}"
        )
    return x, y


def plot_curves(
    curves: Mapping[str, Sequence[float] | tuple],
    *,
    title: str = "",
    xlabel: str = "step",
    ylabel: str = "loss",
    logy: bool = False,
    hline: tuple[float, str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Plot named curves (loss against step) on one axes and return the figure.

    A curve that reaches ``inf``/``nan`` (a diverged run) is drawn up to its last finite value and
    its label gets ``(diverged at <xlabel> x)``, so a divergence is visible, not a blank axes.

    Args:
      curves: ``{label: values}`` or ``{label: (steps, values)}``.
      title, xlabel, ylabel: text.
      logy: a logarithmic loss axis (non-positive values are dropped from view by matplotlib).
      hline: ``(value, label)``: a dashed horizontal reference (an optimum, a lower bound).
      ax: draw into these axes instead of a new figure.

    Returns:
      The matplotlib figure.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"curves must be a non-empty mapping label -> values; got {curves!r:.80}")
    fig, ax = new_axes(ax)
    for label, curve in curves.items():
        x, y = _xy(curve)
        bad = ~np.isfinite(y)
        if bad.any():
            k = int(np.argmax(bad))
            label = f"{label} (diverged at {xlabel} {x[k]:g})"
            x, y = x[:k], y[:k]
        ax.plot(x, y, label=str(label))
    if hline is not None:
        value, text = hline
        ax.axhline(float(value), color="black", linestyle="--", linewidth=1.0, label=text)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig
