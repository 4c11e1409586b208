"""Figures from fits, reports and sweeps (matplotlib, the ``plot`` extra, imported lazily)."""

from gradlab.plot._mpl import pyplot, save_figure
from gradlab.plot.convergence import loglog_slope, plot_convergence
from gradlab.plot.curves import plot_curves
from gradlab.plot.density import plot_densities
from gradlab.plot.diagnostics import plot_fits, plot_residuals
from gradlab.plot.landscape import plot_landscape
from gradlab.plot.sweep import plot_divergence_frontier, plot_sweep_curves, plot_sweep_heatmap
from gradlab.plot.weights import plot_bars, plot_weights

__all__ = [
    "loglog_slope",
    "plot_bars",
    "plot_convergence",
    "plot_curves",
    "plot_densities",
    "plot_divergence_frontier",
    "plot_fits",
    "plot_landscape",
    "plot_residuals",
    "plot_sweep_curves",
    "plot_sweep_heatmap",
    "plot_weights",
    "pyplot",
    "save_figure",
]
