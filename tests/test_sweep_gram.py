"""The Gram path (d x d per step) equals the data path and gradlab.fit to float rounding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradlab
from gradlab.sweeps import quadratic_train, sweep, sweep_quadratic


def seed002(dtype=np.float64):
    """Seed 002's data: x = linspace(0, 10, 80), y = 2.5 + 1.7 x + N(0, 1), bias column."""
    rng = np.random.default_rng(42)
    x = np.linspace(0, 10, 80)
    y = 2.5 + 1.7 * x + rng.normal(0, 1.0, size=len(x))
    return np.c_[np.ones_like(x), x].astype(dtype), y.astype(dtype)


X64, Y64 = seed002()
SEED_LRS = [0.001, 0.01, 0.05, 0.2]
GRID = {"lr": SEED_LRS + list(np.linspace(0.02, 0.03, 6)), "l2": [0.0, 0.1]}


def _cancellation_atol(res, X, y, eps):
    """Rounding bound of (3): eps * (|w'Gw| + 2|c'w| + s + l2 w'w) at the final w, times a
    small constant for the steps' accumulation."""
    n = X.shape[0]
    w = np.asarray(res.params, np.float64)
    G, c, s = X.T @ X / n, X.T @ y / n, y @ y / n
    with np.errstate(invalid="ignore", over="ignore"):  # diverged rows hold inf
        scale = np.abs(np.einsum("id,de,ie->i", w, G, w)) + 2 * np.abs(w @ c) + s
        scale += np.asarray(res.grid.values["l2"]) * np.einsum("id,id->i", w, w)
    return 64 * eps * scale


@pytest.fixture(scope="module")
def both_paths():
    kw = dict(progress=False)
    gram = sweep_quadratic(X64, Y64, GRID, 200, **kw)
    data = sweep_quadratic(X64, Y64, GRID, 200, path="data", **kw)
    return gram, data


def test_seed_lrs_diverge_above_two_over_lambda_max(both_paths):
    gram, data = both_paths
    lam = np.linalg.eigvalsh(2 * X64.T @ X64 / 80)[-1]
    bound = 2 / lam  # about 0.029 on the seed's data
    lr, l2 = gram.grid.values["lr"], gram.grid.values["l2"]
    unreg = l2 == 0
    np.testing.assert_array_equal(gram.diverged[unreg], lr[unreg] > bound)
    np.testing.assert_array_equal(gram.diverged, data.diverged)


def test_gram_equals_data_path_float64(both_paths):
    gram, data = both_paths
    ok = ~gram.diverged
    atol = _cancellation_atol(gram, X64, Y64, np.finfo(np.float64).eps)
    hg, hd = gram.history["loss"][ok], data.history["loss"][ok]
    assert np.all(np.abs(hg - hd) <= atol[ok, None])
    np.testing.assert_allclose(gram.params[ok], data.params[ok], rtol=1e-10, atol=1e-12)


def test_gram_equals_data_path_float32():
    X, y = seed002(np.float32)
    grid = {"lr": np.float32([0.001, 0.01, 0.02, 0.028]), "momentum": np.float32([0.0, 0.5])}
    gram = sweep_quadratic(X, y, grid, 100, progress=False)
    data = sweep_quadratic(X, y, grid, 100, path="data", progress=False)
    assert not gram.diverged.any()
    eps = np.finfo(np.float32).eps
    n = X.shape[0]
    w = np.asarray(gram.params, np.float64)
    G, c, s = X.T.astype(float) @ X / n, X.T.astype(float) @ y / n, float(y @ y) / n
    scale = np.abs(np.einsum("id,de,ie->i", w, G, w)) + 2 * np.abs(w @ c) + s
    err = np.abs(gram.columns["loss"].astype(float) - data.columns["loss"])
    assert np.all(err <= 64 * eps * scale), (err, 64 * eps * scale)


def test_matches_gradlab_fit_with_optax_sgd():
    """The data path is plain GD/heavy ball: fit with optax.sgd(lr, momentum) on eq. (1)."""
    grid = {"lr": [0.001, 0.01, 0.025], "l2": [0.0, 0.3], "momentum": [0.0, 0.8]}
    data = sweep_quadratic(X64, Y64, grid, 50, path="data", progress=False)

    def fit_train(hp, key):
        def loss(w, X, y):
            r = X @ w - y
            return r @ r / X.shape[0] + hp["l2"] * (w @ w)

        opt = optax.sgd(hp["lr"], momentum=hp["momentum"])
        return gradlab.fit(loss, jnp.zeros(2), (X64, Y64), opt, 50)

    fitted = sweep(fit_train, grid, progress=False)
    assert not fitted.diverged.any() and not data.diverged.any()
    np.testing.assert_allclose(fitted.history["loss"], data.history["loss"], rtol=1e-12)
    np.testing.assert_allclose(fitted.params, data.params, rtol=1e-11)
    np.testing.assert_array_equal(fitted.columns["steps_taken"], 50)


def test_record_every_strides_the_history():
    train = quadratic_train(X64, Y64, 40, record_every=10)
    full = quadratic_train(X64, Y64, 40)
    hp = {"lr": jnp.asarray(0.01)}
    a, b = jax.jit(train)(hp, None), jax.jit(full)(hp, None)
    np.testing.assert_array_equal(a.history["loss"], b.history["loss"][9::10])
    assert a.history_steps.tolist() == [10, 20, 30, 40]


def test_bad_input():
    with pytest.raises(ValueError, match="'lr' \\(required\\)"):
        sweep_quadratic(X64, Y64, {"l2": [0.1]}, 10)
    with pytest.raises(ValueError, match="'lr' \\(required\\)"):
        sweep_quadratic(X64, Y64, {"lr": [0.1], "lambda": [0.1]}, 10)
    with pytest.raises(ValueError, match=r"grid\['lr'\] must be >= 0"):
        sweep_quadratic(X64, Y64, {"lr": [-0.1]}, 10)
    with pytest.raises(ValueError, match="y has shape"):
        sweep_quadratic(X64, Y64[:, None], {"lr": [0.1]}, 10)
    with pytest.raises(ValueError, match="record_every"):
        sweep_quadratic(X64, Y64, {"lr": [0.1]}, 10, record_every=3)
    with pytest.raises(ValueError, match="path must be"):
        sweep_quadratic(X64, Y64, {"lr": [0.1]}, 10, path="fast")
    with pytest.raises(TypeError, match="floating"):
        sweep_quadratic(X64.astype(int), Y64, {"lr": [0.1]}, 10)


@pytest.mark.parametrize("path", ["gram", "data"])
def test_mixed_dtypes_are_a_named_error_not_a_scan_carry_error(path):
    X16, y32 = X64.astype(np.float16), Y64.astype(np.float32)
    with pytest.raises(TypeError, match=r"X has dtype float16 but y has dtype float32"):
        sweep_quadratic(X16, y32, {"lr": [0.01]}, 10, path=path, progress=False)
    with pytest.raises(TypeError, match=r"X has dtype float64 but y has dtype float32"):
        quadratic_train(X64, y32, 10, path=path)
