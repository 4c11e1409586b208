"""gradlab.fit under vmap: lanes are independent runs, bitwise.

What bitwise means here. ``fit`` adds no cross-lane arithmetic: the masking, sampling, history
and early-stop bookkeeping are per lane. So with a loss and optimizer whose arithmetic XLA
lowers the same batched and unbatched (elementwise ops and reductions, ``optax.sgd``), a vmapped
lane equals the same run done alone bit for bit, float64 and float32 at "highest". With
matmuls XLA:CPU picks a different kernel for the batched product (a gemm instead of a gemv,
another summation order), and in float64 its vectorized ``pow``/``sqrt`` paths (adam's bias
correction) round differently from the scalar ones: such lanes match the lone run to a few ulp
per step (tested at rtol 1e-12), and match *each other* bitwise when the same run sits at
another position beside other neighbours in a batch of the same size: a lane's result depends
on nothing but its own inputs and the batch size XLA compiled for.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradlab
from gradlab.derivations.mse import mse_mean

RNG = np.random.default_rng(0)
XS = RNG.normal(size=(48, 4))
YS = RNG.normal(size=48)


def ew_mse(params, X, y):
    """Mean squared error with an elementwise product and a reduction (no matmul)."""
    r = jnp.sum(X * params["w"][None, :], axis=1) + params["b"] - y
    return jnp.mean(r * r)


def _grid(dtype):
    lr, lam, seed = np.meshgrid([0.01, 0.08], [0.0, 0.5], [0, 1], indexing="ij")
    keys = jax.random.split(jax.random.key(7), 2)[seed.ravel()]
    return jnp.asarray(lr.ravel(), dtype), jnp.asarray(lam.ravel(), dtype), keys


def _make_train(loss_fn, opt, dtype, batch_size):
    X, y = jnp.asarray(XS, dtype), jnp.asarray(YS, dtype)
    p0 = {"w": jnp.zeros(4, dtype), "b": jnp.zeros((), dtype)}

    def train(lr, lam, key):
        def loss(p, X, y):
            return loss_fn(p, X, y) + lam * jnp.sum(p["w"] * p["w"])

        return gradlab.fit(
            loss, p0, (X, y), opt(lr), 40, key=key, batch_size=batch_size, record_every=5
        )

    return train


def _lane(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


@pytest.mark.parametrize(
    "dtype,batch_size",
    [(jnp.float64, None), (jnp.float64, 12), (jnp.float32, None), (jnp.float32, 12)],
)
def test_lane_equals_lone_run_bitwise(dtype, batch_size):
    train = _make_train(ew_mse, optax.sgd, dtype, batch_size)
    lr, lam, keys = _grid(dtype)
    batched = jax.jit(jax.vmap(train))(lr, lam, keys)
    lone = jax.jit(train)
    assert batched.precision == "highest"
    for i in range(lr.shape[0]):
        alone = lone(lr[i], lam[i], keys[i])
        chex.assert_trees_all_equal(_lane(batched, i), alone)
    # the grid's lanes are genuinely different runs (full-batch runs ignore the seed)
    distinct = lr.shape[0] if batch_size else lr.shape[0] // 2
    assert len({float(x) for x in batched.loss}) == distinct


# optax.adam's bias correction computes ``float ** int32`` inside optax, which strict dtype
# promotion (conftest.py) refuses: not gradlab's code.
@pytest.mark.standard_dtypes("optax.adam: float ** int32 inside optax")
def test_matmul_lanes_are_independent_bitwise_and_close_to_lone_runs():
    train = _make_train(mse_mean, optax.adam, jnp.float64, 12)
    lr, lam, keys = _grid(jnp.float64)
    run = jax.jit(jax.vmap(train))
    full = run(lr, lam, keys)
    # the same runs at other positions, beside other neighbours, in a batch of the same size:
    # bitwise the same (XLA's kernel choice depends on the batch size, not on the lanes)
    for order in ([5, 2, 7, 0, 3, 1, 4, 6], [3, 3, 0, 1, 7, 7, 2, 6]):
        o = jnp.array(order)
        other = run(lr[o], lam[o], keys[o])
        for j, i in enumerate(order):
            chex.assert_trees_all_equal(_lane(full, i), _lane(other, j))
    lone = jax.jit(train)
    for i in range(lr.shape[0]):
        alone = lone(lr[i], lam[i], keys[i])
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15),
            _lane(full, i),
            alone,
        )


@jax.jit
def _gd_lanes(lrs):
    X, y = jnp.asarray(XS), jnp.asarray(YS)
    p0 = {"w": jnp.zeros(4), "b": jnp.zeros(())}
    return jax.vmap(lambda lr: gradlab.fit(ew_mse, p0, (X, y), optax.sgd(lr), 60))(lrs)


def test_a_diverging_lane_is_frozen_and_isolated():
    calm = jnp.array([0.01, 0.3])
    wild = jnp.array([0.01, 1e200, 0.3, 5.0])  # 1e200: inf/NaN in one step; 5.0: bound
    a, b = _gd_lanes(calm), _gd_lanes(wild)
    np.testing.assert_array_equal(b.diverged, [False, True, False, True])
    for i, j in ((0, 0), (1, 2)):
        chex.assert_trees_all_equal(_lane(a, i), _lane(b, j))
    for leaf in jax.tree.leaves(b):
        assert np.all(np.isfinite(np.asarray(leaf, dtype=float)))
    assert int(b.steps_taken[1]) == 0  # 1e200 is bad at the very first step
    np.testing.assert_array_equal(b.params["w"][1], 0.0)  # frozen at params0
    assert 0 < int(b.steps_taken[3]) < 60


def test_early_stop_is_a_per_lane_mask():
    X, y = jnp.asarray(XS), jnp.asarray(YS)
    p0 = {"w": jnp.zeros(4), "b": jnp.zeros(())}

    def train(tol):
        es = gradlab.EarlyStop(tol=tol, patience=5)
        return gradlab.fit(ew_mse, p0, (X, y), optax.sgd(0.05), 400, early_stop=es)

    tols = jnp.array([0.0, 1e-8, 1e-4, 1e-2])
    batched = jax.jit(jax.vmap(train))(tols)
    np.testing.assert_array_equal(batched.stopped_early, [False, True, True, True])
    taken = np.asarray(batched.steps_taken)
    assert taken[0] == 400 and taken[1] > taken[2] > taken[3] > 0
    lone = jax.jit(train)
    for i in range(4):
        chex.assert_trees_all_equal(_lane(batched, i), lone(tols[i]))


def test_a_flagged_lane_changes_no_bit_of_its_neighbours():
    """A lane with invalid input (NaN data) is frozen and flagged; the others are the lone runs."""
    X, y = jnp.asarray(XS), jnp.asarray(YS)
    p0 = {"w": jnp.zeros(4), "b": jnp.zeros(())}

    def train(X, lr):
        return gradlab.fit(mse_mean, p0, (X, y), optax.sgd(lr), 30, record_every=5)

    Xs = jnp.stack([X, X.at[2, 1].set(jnp.nan), X])
    lrs = jnp.array([0.05, 0.05, 0.02])
    batch = jax.jit(jax.vmap(train))(Xs, lrs)
    assert batch.invalid.tolist() == [False, True, False]
    assert batch.reasons()[1].startswith("X must be finite")
    for i in (0, 2):
        alone = jax.jit(train)(Xs[i], lrs[i])
        for a, b in zip(jax.tree.leaves(_lane(batch, i)), jax.tree.leaves(alone), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
