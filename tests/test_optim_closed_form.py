"""Closed-form oracles (``gradlab.optim.closed_form``) against numpy, scikit-learn and GD.

Ridge convention: ``1/(2n)||r||^2 + lam/2 ||w||^2`` (= half of ``1/n ||r||^2 + lam ||w||^2``),
which scikit-learn's ``Ridge`` writes as ``||r||^2 + alpha ||w||^2`` with ``alpha = n * lam``.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _optim_loop import compiled
from sklearn.linear_model import Ridge

from gradlab.derivations import mse
from gradlab.optim import IllConditionedWarning, lstsq, normal_equation, ridge, ridge_path

MASK = {"w": True, "b": False}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n, d = 50, 4
    X = rng.normal(size=(n, d)) + np.array([0.0, 1.0, -2.0, 5.0])[None, :]
    y = X @ np.array([1.0, -0.5, 0.25, 2.0]) + 3.0 + 0.3 * rng.normal(size=n)
    return X, y


@pytest.fixture(scope="module")
def seed_002():
    """Seed 002's dataset: y = 2.5 + 1.7 x + noise, x = linspace(0, 10, 80), rng seed 42."""
    rng = np.random.default_rng(42)
    x = np.linspace(0, 10, 80)
    y = 2.5 + 1.7 * x + rng.normal(0, 1.0, size=len(x))
    return x[:, None], y


class TestLstsq:
    def test_against_numpy(self, data):
        X, y = data
        A = np.c_[np.ones(len(y)), X]
        theta = np.linalg.lstsq(A, y, rcond=None)[0]
        p = lstsq(X, y)
        np.testing.assert_allclose(p["w"], theta[1:], rtol=1e-12)
        np.testing.assert_allclose(p["b"], theta[0], rtol=1e-12)

    def test_without_intercept(self, data):
        X, y = data
        p = lstsq(X, y, fit_intercept=False)
        want = np.linalg.lstsq(X, y, rcond=None)[0]
        np.testing.assert_allclose(p["w"], want, rtol=1e-12, atol=1e-13)
        assert float(p["b"]) == 0.0

    def test_is_a_stationary_point_of_mse(self, data):
        X, y = data
        g = mse.mse_mean_grad(lstsq(X, y), X, y)
        for leaf in jax.tree.leaves(g):
            np.testing.assert_allclose(leaf, 0.0, atol=1e-12)

    def test_under_jit(self, data):
        X, y = data
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-13),
            jax.jit(lstsq)(X, y),
            lstsq(X, y),
        )


class TestNormalEquation:
    def test_seed_002_matches_lstsq_without_warning(self, seed_002):
        X, y = seed_002
        with warnings.catch_warnings():
            warnings.simplefilter("error", IllConditionedWarning)
            p = normal_equation(X, y)
        q = lstsq(X, y)
        # seed 002's OLS solution: intercept ~2.5, slope ~1.7
        np.testing.assert_allclose(p["w"], q["w"], rtol=1e-12)
        np.testing.assert_allclose(p["b"], q["b"], rtol=1e-12)
        assert abs(float(q["w"][0]) - 1.7) < 0.1 and abs(float(q["b"]) - 2.5) < 0.5

    def test_warns_when_ill_conditioned(self, seed_002):
        # Seed 002's x shifted to [1e4, 1e4 + 10]: cond([1, x]^T [1, x]) ~ 1e14 > eps^-1/2.
        X, y = seed_002
        X_far = X + 1e4
        with pytest.warns(IllConditionedWarning, match=r"cond\(A\^T A\) = .* exceeds 6\.7"):
            p = normal_equation(X_far, y)
        q = lstsq(X_far, y)  # SVD of the centered data: still accurate
        np.testing.assert_allclose(q["w"], lstsq(X, y)["w"], rtol=1e-9)
        # and the normal equation really is worse than lstsq there
        assert abs(float(p["w"][0] - q["w"][0])) > 1e-9

    def test_threshold_is_settable_and_dtype_aware(self, seed_002):
        X, y = seed_002
        with pytest.warns(IllConditionedWarning):
            normal_equation(X, y, cond_threshold=10.0)
        # x in [100, 110]: cond(A^T A) ~ 1e6, fine for float64 (eps^-1/2 ~ 6.7e7) but past
        # float32's eps^-1/2 ~ 2.9e3
        X_mid = X + 100.0
        with warnings.catch_warnings():
            warnings.simplefilter("error", IllConditionedWarning)
            normal_equation(X_mid, y)
        with pytest.warns(IllConditionedWarning, match=r"float32"):
            normal_equation(jnp.asarray(X_mid, jnp.float32), jnp.asarray(y, jnp.float32))

    def test_warning_class_is_a_user_warning(self):
        assert issubclass(IllConditionedWarning, UserWarning)


class TestRidge:
    LAMS = np.array([1e-4, 1e-2, 0.1, 1.0, 10.0])

    def test_path_against_sklearn(self, data):
        X, y = data
        n = len(y)
        path = ridge_path(X, y, self.LAMS)
        assert path["w"].shape == (5, 4) and path["b"].shape == (5,)
        for i, lam in enumerate(self.LAMS):
            sk = Ridge(alpha=n * lam, solver="cholesky", tol=1e-14).fit(X, y)
            np.testing.assert_allclose(path["w"][i], sk.coef_, rtol=1e-11, atol=1e-13)
            np.testing.assert_allclose(path["b"][i], sk.intercept_, rtol=1e-11)

    def test_lambda_zero_is_lstsq(self, data):
        X, y = data
        p = ridge(X, y, 0.0)
        q = lstsq(X, y)
        np.testing.assert_allclose(p["w"], q["w"], rtol=1e-12)
        np.testing.assert_allclose(p["b"], q["b"], rtol=1e-12)

    def test_rank_deficient_lambda_zero_is_min_norm(self):
        # A duplicated column: lstsq's minimum-norm solution splits the weight evenly.
        rng = np.random.default_rng(5)
        x = rng.normal(size=30)
        X = np.c_[x, x]
        y = 2.0 * x + 1.0
        p = ridge(X, y, 0.0)
        np.testing.assert_allclose(p["w"], [1.0, 1.0], rtol=1e-12)
        assert np.isfinite(np.asarray(p["w"])).all()

    def test_stationary_point_of_the_penalized_loss(self, data):
        # grad of mse_half_mean + lam/2 ||w||^2 vanishes at every point of the path
        X, y = data
        path = ridge_path(X, y, self.LAMS)
        for i, lam in enumerate(self.LAMS):
            p = jax.tree.map(lambda a, i=i: a[i], path)
            g = mse.mse_half_mean_grad(p, X, y)
            np.testing.assert_allclose(g["w"] + lam * p["w"], 0.0, atol=1e-12)
            np.testing.assert_allclose(g["b"], 0.0, atol=1e-12)

    def test_gd_reaches_the_closed_form(self, data):
        # Plain optax loop: sgd on mse_half_mean plus optax's own decoupled L2 term (lam w on
        # w only), i.e. the gradient of lam/2 ||w||^2.
        X, y = data
        lam = 0.1
        n = len(y)
        A = np.c_[np.ones(n), X]
        L = float(np.linalg.eigvalsh(A.T @ A / n).max()) + lam
        f = compiled(
            mse.mse_half_mean_grad,
            lambda lr: optax.chain(optax.add_decayed_weights(lam, MASK), optax.sgd(lr)),
            40_000,  # kappa(H) ~ 1200 (uncentered columns): (1 - 1/1200)^40000 ~ 3e-15
        )
        params, _, _ = f({"w": jnp.zeros(4), "b": jnp.zeros(())}, (1 / L,), X, y)
        want = ridge(X, y, lam)
        np.testing.assert_allclose(params["w"], want["w"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(params["b"], want["b"], rtol=0, atol=1e-10)

    def test_gd_on_mse_reaches_lstsq(self, seed_002):
        # Seed 002's batch GD with step 1/L instead of the seed's alpha = 0.05, which is past
        # the stability bound 2/L ~ 0.029 on this data and diverges; reaches lstsq within 1e-10.
        X, y = seed_002
        n = len(y)
        A = np.c_[np.ones(n), X]
        L = float(np.linalg.eigvalsh(2 * A.T @ A / n).max())
        f = compiled(mse.mse_mean_grad, optax.sgd, 20000)
        params, _, _ = f({"w": jnp.zeros(1), "b": jnp.zeros(())}, (1 / L,), X, y)
        want = lstsq(X, y)
        np.testing.assert_allclose(params["w"], want["w"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(params["b"], want["b"], rtol=0, atol=1e-10)
