"""gradlab.stability: the gradient-descent bound 2 / lambda_max, on seed 002's own data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _seed002 import seed002_data

import gradlab
from gradlab.derivations.mse import mse_mean

lambda_max = gradlab.stability.lambda_max
max_stable_lr = gradlab.stability.max_stable_lr


X, Y = seed002_data()
P0 = {"w": jnp.zeros(1), "b": jnp.zeros(())}
A = np.c_[np.ones(80), np.asarray(X)]
H_SEED = (2 / 80) * A.T @ A  # Hessian of J = (1/n)||A theta - y||^2


def test_seed002_bound_is_about_0_029():
    bound = float(max_stable_lr(mse_mean, P0, X, Y))
    np.testing.assert_allclose(bound, 2 / np.linalg.eigvalsh(H_SEED)[-1], rtol=1e-12)
    assert abs(bound - 0.029) < 5e-4
    assert 0.05 > bound  # the seed's alpha is past it


def test_matrix_power_and_dense_agree():
    dense = lambda_max(mse_mean, P0, X, Y, method="dense")
    power = lambda_max(mse_mean, P0, X, Y, method="power", iters=300)
    matrix = lambda_max(H_SEED)
    np.testing.assert_allclose(dense, np.linalg.eigvalsh(H_SEED)[-1], rtol=1e-12)
    np.testing.assert_allclose(power, dense, rtol=1e-10)
    np.testing.assert_allclose(matrix, dense, rtol=1e-12)
    np.testing.assert_allclose(max_stable_lr(H_SEED), 2 / dense, rtol=1e-12)


def test_power_iteration_on_a_larger_quadratic():
    rng = np.random.default_rng(0)
    Xb = jnp.asarray(rng.normal(size=(300, 40)))
    yb = jnp.asarray(rng.normal(size=300))
    p = {"w": jnp.zeros(40), "b": jnp.zeros(())}
    Ab = np.c_[np.asarray(Xb), np.ones(300)]
    want = np.linalg.eigvalsh((2 / 300) * Ab.T @ Ab)[-1]
    got = lambda_max(mse_mean, p, Xb, yb, method="power", iters=400)
    np.testing.assert_allclose(got, want, rtol=1e-8)


@jax.jit
def _gd(lrs):
    def one(lr):
        return gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(lr), 2000, record_every=2000)

    return jax.vmap(one)(lrs)


def test_the_bound_separates_convergence_from_divergence():
    bound = float(max_stable_lr(mse_mean, P0, X, Y))
    res = _gd(jnp.array([0.98 * bound, 1.02 * bound, 0.05]))  # 0.05: the seed's alpha
    np.testing.assert_array_equal(res.diverged, [False, True, True])
    theta, *_ = np.linalg.lstsq(A, np.asarray(Y), rcond=None)
    np.testing.assert_allclose(res.params["w"][0], theta[1:], rtol=1e-6)


@pytest.mark.parametrize(
    "args,kwargs,exc,match",
    [
        ((np.ones((2, 3)),), {}, ValueError, r"hessian_or_loss has shape \(2, 3\)"),
        ((np.ones(3),), {}, ValueError, "2 dimension"),
        ((np.array([[1.0, np.nan], [np.nan, 1.0]]),), {}, ValueError, "finite"),
        ((-np.eye(2),), {}, ValueError, "positive curvature"),
        ((mse_mean,), {}, TypeError, "needs params"),
        ((np.eye(2), P0), {}, TypeError, "takes no params"),
        ((mse_mean, P0, X, Y), {"method": "lanczos"}, ValueError, "method must be"),
        ((mse_mean, P0, X, Y), {"method": "power", "iters": 0}, ValueError, "iters must be"),
    ],
)
def test_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        max_stable_lr(*args, **kwargs)
