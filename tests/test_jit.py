"""gradlab.fit under jit: hyperparameters and seeds are traced arrays (one compilation serves
them all), static configuration stays static, and jit changes no bit of the result."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradlab
from gradlab.derivations.mse import mse_mean, mse_mean_grad

RNG = np.random.default_rng(1)
X = jnp.asarray(RNG.normal(size=(40, 3)))
Y = jnp.asarray(RNG.normal(size=40))
P0 = {"w": jnp.zeros(3), "b": jnp.zeros(())}


class Counting:
    """A loss that counts how often it is traced (a Python side effect runs at trace time only)."""

    def __init__(self):
        self.traces = 0

    def __call__(self, params, X, y, lam):
        self.traces += 1
        return mse_mean(params, X, y) + lam * jnp.sum(params["w"] * params["w"])


def test_lr_lambda_and_seed_are_traced_not_baked_in():
    loss = Counting()

    @jax.jit
    def train(lr, lam, key):
        def closed(p, X, y):
            return loss(p, X, y, lam)

        return gradlab.fit(closed, P0, (X, Y), optax.sgd(lr), 30, key=key, batch_size=8)

    a = train(0.05, 0.1, jax.random.key(0))
    traced = loss.traces
    assert traced > 0
    b = train(0.02, 0.3, jax.random.key(1))
    c = train(0.05, 0.1, jax.random.key(0))
    assert loss.traces == traced  # no retrace for new values
    assert train._cache_size() == 1
    assert not np.array_equal(a.params["w"], b.params["w"])
    chex.assert_trees_all_equal(a, c)


# optax.adam's bias correction computes ``float ** int32`` inside optax, which strict dtype
# promotion (conftest.py) refuses: not gradlab's code.
@pytest.mark.standard_dtypes("optax.adam: float ** int32 inside optax")
def test_jit_changes_no_bit():
    def run(lr, p0, X, Y):
        return gradlab.fit(mse_mean, p0, (X, Y), optax.adam(lr), 25, grad=mse_mean_grad)

    eager = run(0.1, P0, X, Y)
    # the same program: lr a constant and the arrays arguments in both
    jitted = jax.jit(lambda *a: run(0.1, *a))(P0, X, Y)
    chex.assert_trees_all_equal(eager, jitted)
    assert jitted.precision == eager.precision == "highest"
    # a traced lr, or data baked in as constants, is another program (XLA folds constants):
    # equal to rounding only
    for other in (jax.jit(run)(0.1, P0, X, Y), jax.jit(lambda: run(0.1, P0, X, Y))()):
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-16), eager, other
        )


def test_raw_uint32_keys_work_too():
    def run(key):
        return gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.05), 10, key=key, batch_size=8)

    keys = jax.random.split(jax.random.PRNGKey(0), 3)  # legacy (3, 2) uint32 keys
    res = jax.jit(jax.vmap(run))(keys)
    assert res.params["w"].shape == (3, 3)
    assert not np.array_equal(res.params["w"][0], res.params["w"][1])


def test_static_configuration_must_be_python_ints():
    @jax.jit
    def train(steps):
        return gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.1), steps)

    with pytest.raises(TypeError, match="steps must be a Python int"):
        train(10)


def test_traced_bad_learning_rate_is_not_an_error_but_a_flag():
    """A traced negative rate cannot be checked at call time: gradient ascent diverges and is
    flagged, without NaN, as documented."""
    res = jax.jit(lambda lr: gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(lr), 300))(-1.0)
    assert bool(res.diverged)
    assert np.all(np.isfinite(res.history["loss"]))
