"""``gradlab.optim`` keeps the params' dtype and needs no implicit promotion (strict mode).

The transformations are gradlab's own end to end, so they run under
``jax.numpy_dtype_promotion("strict")``: a float32 model stays float32 even with float64
hyperparameters, and nothing relies on silent promotion. (``optax.projections.projection_simplex``
itself mixes int64 and float32 under strict promotion, so the projected step is checked with
``projection_non_negative``.)
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradlab.derivations import mse
from gradlab.optim import (
    exponentiated_gradient,
    fista,
    ista,
    lstsq,
    normal_equation,
    project,
    prox_elastic_net,
    ridge_path,
)

DTYPES = [jnp.float32, jnp.float64]
MASK = {"w": True, "b": False}

LINEAR = {
    "fista": lambda: fista(np.float64(0.1), jnp.asarray(0.2, jnp.float64), l2=0.1, mask=MASK),
    "ista": lambda: ista(0.1, 0.2, mask=MASK),
    "prox_elastic_net": lambda: prox_elastic_net(0.1, jnp.asarray(0.05, jnp.float64)),
    "project": lambda: project(optax.projections.projection_non_negative),
}


def _data(dtype):
    X = jnp.asarray(np.random.default_rng(0).normal(size=(20, 3)), dtype)
    return X, X @ jnp.asarray([1.0, -2.0, 0.5], dtype) + 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(LINEAR))
def test_linear_model_transformations(name, dtype):
    X, y = _data(dtype)
    params = {"w": jnp.full(3, 0.1, dtype), "b": jnp.zeros((), dtype)}
    opt = LINEAR[name]()
    with jax.numpy_dtype_promotion("strict"):
        grads = mse.mse_half_mean_grad(params, X, y)
        updates, state = jax.jit(opt.update)(grads, opt.init(params), params)
    for leaf in jax.tree.leaves(updates):
        assert leaf.dtype == dtype
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(updates))


@pytest.mark.parametrize("dtype", DTYPES)
def test_exponentiated_gradient(dtype):
    theta = jnp.full(3, 1 / 3, dtype)
    opt = exponentiated_gradient(jnp.asarray(0.1, jnp.float64))  # strong float64 rate
    with jax.numpy_dtype_promotion("strict"):
        updates, state = jax.jit(opt.update)(jnp.ones(3, dtype), opt.init(theta), theta)
    assert updates.dtype == dtype and state.log_params.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_closed_forms(dtype):
    X, y = _data(dtype)
    with jax.numpy_dtype_promotion("strict"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # float32 conditioning warning is not the point here
        for out in (lstsq(X, y), normal_equation(X, y), ridge_path(X, y, [0.0, 0.1])):
            for leaf in jax.tree.leaves(out):
                assert leaf.dtype == dtype
