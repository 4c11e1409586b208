"""Every experiment's quick variant runs end to end and reproduces the numbers its docstring states.

Each experiment runs once per module (a fixture), into a temporary results folder; the tests
then read the metrics it returned and the files it wrote. No timing is asserted (the speed table
of ``linreg_diagnostics`` is checked for its shape only).
"""

from __future__ import annotations

import contextlib
import json
import math

import jax
import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from experiments import (  # noqa: E402
    histogram_softmax,
    linreg_diagnostics,
    linreg_gd,
    logistic_mixture,
    mirage,
    regularized_regression,
)

MODULES = {
    "linreg_gd": linreg_gd,
    "regularized_regression": regularized_regression,
    "mirage": mirage,
    "histogram_softmax": histogram_softmax,
    "logistic_mixture": logistic_mixture,
    "linreg_diagnostics": linreg_diagnostics,
}
_RUNS: dict = {}
# Experiments that run optax code strict dtype promotion (conftest.py) refuses, with the reason:
# they run under standard promotion, the others strict.
STANDARD_DTYPES = {
    "mirage": "optax.projections.projection_simplex: int64 with float64 inside optax",
    "logistic_mixture": "optax.adam: float ** int32 inside optax",
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")

    def get(name):
        if name not in _RUNS:
            out = root / name
            relaxed = name in STANDARD_DTYPES
            with jax.numpy_dtype_promotion("standard") if relaxed else contextlib.nullcontext():
                _RUNS[name] = (MODULES[name].run(quick=True, out_dir=out), out)
        return _RUNS[name]

    return get


def _files(metrics, out):
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["quick"] is True
    assert set(on_disk["checks"]) == set(metrics["checks"])
    for png in metrics["plots"]:
        assert (out / png).stat().st_size > 5000, png
    return on_disk


@pytest.mark.parametrize("name", list(MODULES))
def test_writes_metrics_plots_and_passes_its_checks(results, name):
    metrics, out = results(name)
    _files(metrics, out)
    failed = [claim for claim, ok in metrics["checks"].items() if not ok]
    assert not failed


@pytest.mark.parametrize("name", list(MODULES))
def test_docstring_states_command_runtime_and_numbers(name):
    doc = MODULES[name].__doc__
    assert f"gradlab run {name}" in doc and f"gradlab run {name} --quick" in doc
    assert "Runtime on a 2-core CPU" in doc
    assert "RUNTIME_" not in doc, "runtime placeholder left in the docstring"
    assert callable(MODULES[name].run)


class TestLinregGD:
    def test_stability_bound_and_divergence(self, results):
        m, _ = results("linreg_gd")
        assert m["stability_bound"] == pytest.approx(0.029158630, rel=1e-6)
        assert m["diverged_lrs"] == [0.05, 0.2, 0.5]  # the seed's 0.05 included
        assert m["seed_section5_alpha_0.05_diverged"] and m["minibatch_seed_lr_0.05_diverged"]
        assert m["sweep_last_converging_lr"] < m["stability_bound"] <= m["sweep_first_diverging_lr"]

    def test_gd_reaches_lstsq_and_normal_equation(self, results):
        m, _ = results("linreg_gd")
        np.testing.assert_allclose(m["theta_lstsq"], [2.54673863, 1.69579651], atol=1e-8)
        assert m["gd_vs_lstsq_max_abs"] < 1e-10
        assert m["lstsq_vs_normal_equation_max_abs"] < 1e-12

    def test_minibatch_and_early_stopping(self, results):
        m, _ = results("linreg_gd")
        assert m["loss_at_optimum"] < m["minibatch_final_loss"] < 1.1 * m["loss_at_optimum"]
        assert m["early_stop_stopped"] and m["early_stop_steps"] < m["early_stop_budget"]
        assert 0 <= m["early_stop_gap_to_optimum"] < 1e-3


class TestRegularizedRegression:
    def test_seed_backward_fails_as_written(self, results):
        m, _ = results("regularized_regression")
        assert "l1_lambda" in m["seed_backward_error"]

    def test_checker_blames_l1_and_l2_by_the_right_factors(self, results):
        m, _ = results("regularized_regression")
        assert not m["seed_check_ok"]
        assert sorted(m["seed_blamed_terms_code"]) == ["l1", "l2"]
        for term, coef in m["seed_blame_expected_code"].items():
            assert m["seed_blame_code"][term] == pytest.approx(coef, rel=1e-8)
        assert abs(m["seed_blame_code"]["mse"]) < 1e-8
        # against the markdown objective the factor 2 of the mse term shows instead of l2
        assert sorted(m["seed_blamed_terms_markdown"]) == ["l1", "mse"]
        assert m["seed_blame_markdown"]["mse"] == pytest.approx(1.0, rel=1e-8)

    def test_corrected_derivations_pass(self, results):
        m, _ = results("regularized_regression")
        assert m["elastic_net_check_ok"] and m["code_grad_check_ok"]
        assert all(m["term_checks_ok"].values()) and len(m["term_checks_ok"]) == 6

    def test_coefficients_match_sklearn_in_both_scalings(self, results):
        m, _ = results("regularized_regression")
        assert m["max_abs_vs_sklearn_markdown"] < 1e-10
        assert m["max_abs_vs_sklearn_code"] < 1e-10
        fits = m["fits"]
        assert fits["lasso"]["sklearn_code"] == "Lasso(alpha=0.05)"  # lam1 / 2
        assert fits["ridge"]["sklearn_markdown"] == "Ridge(alpha=100)"  # n * lam2
        assert fits["lasso"]["nonzero"] < len(regularized_regression.TRUE_W)

    def test_sweeps(self, results):
        m, _ = results("regularized_regression")
        assert m["ridge_path_max_abs"] < 1e-10
        nnz = list(m["lasso_nonzero_by_lam1"].values())
        assert nnz[0] == len(regularized_regression.TRUE_W) and nnz[-1] < nnz[0]
        assert all(a >= b for a, b in zip(nnz, nnz[1:], strict=False))
        assert m["seed_loop_vs_correct_max_abs"] > 0.05  # the seed's loop lands elsewhere


class TestMirage:
    def test_sign_of_the_entropy_term(self, results):
        m, _ = results("mirage")
        assert m["entropy_seed_sign"] < m["entropy_lam0"] < m["entropy_maxent_sign"]
        assert m["entropy_maxent_sign"] <= math.log(5)

    def test_eg_equals_projected_gradient(self, results):
        m, _ = results("mirage")
        assert m["eg_vs_projected_max_abs"] < 1e-8
        assert sum(m["crosscheck_theta"]) == pytest.approx(1.0, abs=1e-12)

    def test_lambda_sweep(self, results):
        m, _ = results("mirage")
        seed, maxent = (
            np.asarray(m["sweep_entropy_seed_sign"]),
            np.asarray(m["sweep_entropy_maxent_sign"]),
        )
        assert np.all(seed <= maxent + 1e-12)
        assert seed[-1] < 1e-3  # large lam: the seed's sign collapses onto a vertex
        assert maxent[-1] > math.log(5) - 1e-2  # the stated aim: towards uniform
        assert np.all(np.diff(maxent) > -1e-9)


@pytest.mark.parametrize("name", ["histogram_softmax", "logistic_mixture"])
class TestHistograms:
    def test_hand_and_autodiff_trajectories(self, results, name):
        m, _ = results(name)
        assert m["hand_vs_autodiff_d20"] < 1e-10 and m["hand_vs_autodiff_d100"] < 1e-10

    def test_nll_above_empirical_entropy(self, results, name):
        m, _ = results(name)
        for d in (20, 100):
            assert m[f"min_train_nll_along_path_d{d}"] >= m[f"entropy_d{d}"]
            assert 0 < m[f"gap_d{d}"] < 0.05
            assert m[f"check_ok_d{d}"]


def test_histogram_data_is_the_stated_recipe():
    train, test = histogram_softmax.histogram_data(20)
    assert train.shape == (800,) and test.shape == (200,)
    assert train.min() >= 0 and train.max() <= 19
    train, test = histogram_softmax.histogram_data(100)
    assert train.shape == (8000,) and test.max() <= 99
    assert histogram_softmax.empirical_entropy(np.array([0, 1]), 2) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="d must be 20 or 100"):
        histogram_softmax.histogram_data(30)


class TestLinregDiagnostics:
    def test_r2_matches_sklearn_and_the_seed_baseline_bug(self, results):
        m, _ = results("linreg_diagnostics")
        assert m["r2_max_diff_vs_sklearn"] < 1e-12
        assert m["r2_line"] > 0.99 and m["r2_sine"] < 0.1
        assert m["r2_seed_constant"] < 0 and m["r2_constant_mean_y"] == pytest.approx(0, abs=1e-12)

    def test_residual_diagnostics_and_underfitting(self, results):
        m, _ = results("linreg_diagnostics")
        assert m["residuals_line"]["durbin_watson"] > 1.5 > 0.5 > m["dw_sine"]
        assert m["residuals_sine"]["runs_z"] < -4
        assert abs(m["residuals_line"]["corr_with_fitted"]) < 1e-10
        assert m["underfit_train_mse_degree1"] > 5 * m["underfit_train_mse_degree3"]
        assert m["poly_max_diff_vs_sklearn"] < 1e-8

    def test_cost_surface_and_speed_table(self, results):
        m, _ = results("linreg_diagnostics")
        assert 0.1 < m["cost_gap_50"] < 0.5 and m["cost_steps_to_1e-6"] > 50
        assert set(m["speed"]) == {"python loop", "numpy vectorized", "gradlab.fit (jit, lax.scan)"}
        assert all(v["seconds_per_step"] > 0 for v in m["speed"].values())
        assert m["speed_implementations_agree_max_abs"] < 1e-12
