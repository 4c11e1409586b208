"""Lazy matplotlib: imported on first use, Agg backend unless pyplot is already loaded.

Nothing in gradlab's core imports matplotlib; it is the ``plot`` extra.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def pyplot() -> Any:
    """``matplotlib.pyplot``, importing it with the Agg backend if it is not loaded yet.

    Raises:
      ModuleNotFoundError: matplotlib is missing, with the command that installs it.
    """
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "gradlab.plot needs matplotlib, which is not installed; "
            "install the plot extra: pip install 'gradlab[plot]' (or pip install matplotlib)"
        ) from None
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use(
            "Agg"
        )  # headless: files, not windows (a notebook that loaded pyplot keeps its own)
    import matplotlib.pyplot as plt

    return plt


def new_axes(
    ax: Axes | None = None, figsize: tuple[float, float] = (7.0, 4.5)
) -> tuple[Figure, Axes]:
    """``(fig, ax)``: the given axes and their figure, or a new figure with one axes."""
    if ax is not None:
        # a SubFigure when ``ax`` lives in one; callers only draw on it and return it
        return cast("Figure", ax.figure), ax
    plt = pyplot()
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save ``fig`` as ``path`` (PNG by its suffix), close it, return the path.

    Metadata that changes from run to run (the software stamp) is left out, so the same numbers
    give the same bytes and the checked-in gallery does not churn.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    pyplot().close(fig)
    return path
