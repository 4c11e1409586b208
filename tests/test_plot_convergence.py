"""gradlab.plot.convergence: the log-log slope fit (eq. (1)) and the convergence figure."""

import numpy as np
import pytest

from gradlab.plot import loglog_slope, plot_convergence, pyplot

K = np.arange(1.0, 201.0)


@pytest.mark.parametrize("p", [-2.0, -1.0, 0.5, 4.0])
def test_slope_of_an_exact_power_law(p):
    assert loglog_slope(K, 7.0 * K**p, 10, 100) == pytest.approx(p, abs=1e-12)


def test_slope_uses_only_the_window():
    # 1/k up to 50, then 1/k^3: each window sees its own rate.
    y = np.where(K <= 50, 1 / K, 50.0**2 / K**3)
    assert loglog_slope(K, y, 2, 50) == pytest.approx(-1.0, abs=1e-12)
    assert loglog_slope(K, y, 50, 200) == pytest.approx(-3.0, abs=1e-12)


def test_slope_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="0 < lo < hi"):
        loglog_slope(K, 1 / K, 100, 10)
    with pytest.raises(ValueError, match="at least 3"):
        loglog_slope(K, 1 / K, 10, 11)
    y = 1 / K
    y[20] = 0.0
    with pytest.raises(ValueError, match="positive and finite.*x=21"):
        loglog_slope(K, y, 10, 100)
    with pytest.raises(ValueError, match="same shape"):
        loglog_slope(K, (1 / K)[:, None], 10, 100)


def test_plot_labels_carry_the_fitted_slopes():
    fig = plot_convergence(
        {"a": (K, 1 / K), "b": (K, 1 / K**2)},
        slopes={"b": (10, 100)},
        guides={"bound": (K, 2 / K)},
        marks={"opt": (10.0, 0.01)},
    )
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == "a"
    assert labels[1].startswith("b: slope -2.00 on [10, 100]")
    assert "bound" in labels and "opt" in labels
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"
    pyplot().close(fig)


def test_plot_bad_input():
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot_convergence({})
    with pytest.raises(ValueError, match="not drawn"):
        plot_convergence({"a": (K, 1 / K)}, slopes={"b": (10, 100)})
