"""Beck and Teboulle (2009) and O'Donoghue and Candès (2015) on the lasso of ``note.md``, at the
quick size: the bounds hold at every k, the gap slopes are about -1 (ISTA) and -2 (FISTA) over
the window where the bounds are tight, and adaptive restart ends far below plain FISTA."""

from pathlib import Path

import pytest


def test_reference_optimum_satisfies_kkt(result):
    # F* is only as good as x*: the lasso optimality conditions (note eq. (9)) to round-off.
    assert result["kkt_residual"] < 1e-12
    assert result["L"] == pytest.approx(1.0, rel=1e-12)


def test_beck_teboulle_bounds_hold_at_every_k(result):
    # Theorems 3.1 and 4.4 (note eqs. (6)-(7)).
    assert result["bound_holds_ista"]
    assert result["bound_holds_fista"]


def test_bounds_are_tight_in_the_window(result):
    # Within a factor 70 of the bound over the whole window: the slopes measure the bound's rate.
    for name in ("bound_ratio_ista", "bound_ratio_fista"):
        low, high = result[name]
        assert 0.015 < low <= high <= 1.0, (name, low, high)


def test_ista_gap_falls_as_one_over_k(result):
    assert -1.15 < result["slope_ista"] < -0.85, result["slope_ista"]


def test_fista_gap_falls_as_one_over_k_squared(result):
    assert -2.5 < result["slope_fista"] < -1.8, result["slope_fista"]
    assert result["slope_fista"] < result["slope_ista"] - 0.8


def test_adaptive_restart_beats_plain_fista(result):
    g = result["gap_at_compare"]
    assert g["restart"] < 0.05 * g["fista"], g
    assert g["fista"] < 1e-3 * g["ista"], g


def test_figure_written(result):
    png = Path(result["figure"])
    assert png.suffix == ".png" and png.stat().st_size > 10_000
