"""Finite-difference error against step size, at the quick size, computed with gradlab's
finite-difference witness: truncation (slope +2) and round-off (slope -1) meet near the cube root
of machine epsilon in float32 and float64, and jax.grad beats the best difference by far."""

from pathlib import Path

import pytest

DTYPES = ("float32", "float64")


@pytest.mark.parametrize("dtype", DTYPES)
def test_optimal_central_step_is_near_the_cube_root_of_epsilon(result, dtype):
    r = result[dtype]
    assert 1 / 8 < r["central_step_ratio"] < 8, r["central_step_ratio"]


def test_the_exponent_of_the_optimal_steps_across_dtypes(result):
    # h* ~ C eps^p with the same C in both dtypes, so log(h64/h32) / log(eps64/eps32) = p:
    # 1/2 forward, 1/3 central, 1/5 Richardson (steps are powers of two: +-2/29 resolution).
    e = result["exponent"]
    assert abs(e["central"] - 1 / 3) < 0.08, e
    assert abs(e["forward"] - 1 / 2) < 0.08, e
    assert abs(e["richardson"] - 1 / 5) < 0.08, e


@pytest.mark.parametrize("dtype", DTYPES)
def test_truncation_falls_and_round_off_rises(result, dtype):
    r = result[dtype]
    assert 1.7 < r["slope_truncation"] < 2.3, r["slope_truncation"]
    assert -1.3 < r["slope_roundoff"] < -0.7, r["slope_roundoff"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_best_central_error_is_about_eps_to_the_two_thirds(result, dtype):
    r = result[dtype]
    assert r["eps"] ** (2 / 3) / 10 < r["central_best_err"] < 10 * r["eps"] ** (2 / 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_differences_peak_near_sqrt_eps_and_are_worse(result, dtype):
    r = result[dtype]
    assert 1 / 8 < r["forward_step_ratio"] < 8, r["forward_step_ratio"]
    assert r["forward_best_err"] > 10 * r["central_best_err"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_autodiff_beats_the_best_difference(result, dtype):
    r = result[dtype]
    assert r["autodiff_err"] < 50 * r["eps"]
    assert r["autodiff_advantage"] > 50, r["autodiff_advantage"]


def test_figure_written(result):
    png = Path(result["figure"])
    assert png.suffix == ".png" and png.stat().st_size > 10_000
