"""Pedregosa (2016) on L2 logistic regression, at the quick size: the hypergradient error is
linear in the inner tolerance, gradlab's refusal estimate tracks it, and HOAG reaches the exact
method's hyperparameter with several times fewer inner iterations (note sections 3-4)."""

from pathlib import Path


def test_hypergradient_error_is_linear_in_the_inner_residual(result):
    assert 0.95 < result["error_slope"] < 1.05, result["error_slope"]  # note eq. (4)
    assert result["errors"][0] > 1e-3 > 1e-9 > result["errors"][-1]  # eight decades spanned


def test_gradlab_error_estimate_tracks_the_true_error(result):
    low, high = result["estimate_over_error"]
    assert 0.5 < low <= high < 2.0, (low, high)


def test_hoag_reaches_the_exact_hyperparameter_for_less_inner_work(result):
    lam, val = result["final_lam"], result["final_val"]
    assert abs(lam["hoag"] - lam["exact"]) < 1e-6, lam
    assert abs(val["hoag"] - val["exact"]) < 1e-10, val
    assert result["iteration_ratio"] > 3.0, result["inner_iterations"]


def test_figure_written(result):
    png = Path(result["figure"])
    assert png.suffix == ".png" and png.stat().st_size > 10_000
