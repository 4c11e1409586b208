"""Grouped bar charts: the weights of several models side by side, or one value per label."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from gradlab.plot._mpl import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_weights(
    weights: Mapping[str, Sequence[float]],
    *,
    feature_names: Sequence[str] | None = None,
    title: str = "Model weights",
    xlabel: str = "feature",
    ylabel: str = "weight",
    ax: Axes | None = None,
) -> Figure:
    """Grouped bars: one group per feature, one bar per model (seed 000's comparison chart).

    Args:
      weights: ``{model: (d,) weights}``, every model with the same ``d``.
      feature_names: ``d`` tick labels (the feature index by default).

    Returns:
      The matplotlib figure.
    """
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError("weights must be a non-empty mapping model -> (d,) weights")
    arrays = {k: np.asarray(v, dtype=float) for k, v in weights.items()}
    shapes = {k: a.shape for k, a in arrays.items()}
    first = next(iter(arrays.values()))
    if first.ndim != 1 or any(s != first.shape for s in shapes.values()):
        raise ValueError(f"every model's weights must be one 1-d shape; got {shapes}")
    d, k = first.shape[0], len(arrays)
    if feature_names is not None and len(feature_names) != d:
        raise ValueError(f"feature_names must have {d} entries; got {len(feature_names)}")
    fig, ax = new_axes(ax, figsize=(min(12.0, max(7.0, 0.3 * d * k)), 4.5))
    width = 0.8 / k
    idx = np.arange(d)
    for i, (label, a) in enumerate(arrays.items()):
        ax.bar(idx + (i - (k - 1) / 2) * width, a, width=width, label=label)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xticks(idx, feature_names if feature_names is not None else [str(i) for i in idx])
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_bars(
    values: Mapping[str, float],
    *,
    title: str = "",
    ylabel: str = "",
    logy: bool = False,
    annotate: str = "{:.3g}",
    ax: Axes | None = None,
) -> Figure:
    """One bar per label (a timing table, a metric per model), each annotated with its value."""
    if not isinstance(values, Mapping) or not values:
        raise ValueError("values must be a non-empty mapping label -> number")
    fig, ax = new_axes(ax)
    labels = list(values)
    heights = np.asarray([float(values[k]) for k in labels])
    bars = ax.bar(np.arange(len(labels)), heights, color=[f"C{i}" for i in range(len(labels))])
    for bar, h in zip(bars, heights, strict=True):
        ax.annotate(
            annotate.format(h),
            (bar.get_x() + bar.get_width() / 2, h),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(np.arange(len(labels)), labels)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    return fig
