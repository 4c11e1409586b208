"""Fitted discrete densities drawn over the data's normalized histogram (seed 004)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from gradlab.plot._mpl import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_densities(
    data: Sequence[int],
    densities: Mapping[str, Sequence[float]],
    *,
    components: Mapping[str, Sequence[float]] | None = None,
    title: str = "",
    xlabel: str = "x",
    ax: Axes | None = None,
) -> Figure:
    """The empirical distribution of integer ``data`` as bars, each model's ``p(x)`` as a step line.

    Args:
      data: integer samples in ``{0, ..., d-1}``.
      densities: ``{model: (d,) probabilities}``, each summing to 1 over the support.
      components: ``{label: (d,) weighted component masses}`` (a mixture's ``pi_i p_i``), drawn
        thin and dashed under the densities.

    Returns:
      The matplotlib figure.
    """
    x = np.asarray(data)
    if x.ndim != 1 or x.size == 0 or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"data must be a non-empty 1-d integer array; got {x.dtype}{x.shape}")
    if not isinstance(densities, Mapping) or not densities:
        raise ValueError("densities must be a non-empty mapping model -> (d,) probabilities")
    d = len(next(iter(densities.values())))
    if x.min() < 0 or x.max() >= d:
        raise ValueError(f"data must lie in [0, {d - 1}]; got values in [{x.min()}, {x.max()}]")
    freq = np.bincount(x, minlength=d) / x.size
    fig, ax = new_axes(ax, figsize=(8.0, 4.5))
    support = np.arange(d)
    ax.bar(support, freq, width=1.0, color="0.8", edgecolor="0.6", label="data (empirical)")
    for name, group, style in (
        ("components", components or {}, dict(linewidth=0.9, linestyle="--", alpha=0.8)),
        ("densities", densities, dict(linewidth=1.8)),
    ):
        for label, given in group.items():
            p = np.asarray(given, dtype=float)
            if p.shape != (d,):
                raise ValueError(f"{name}[{label!r}] must have shape ({d},); got {p.shape}")
            ax.step(support, p, where="mid", label=label, **style)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("probability")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig
