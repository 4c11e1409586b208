"""gradlab.fit: cross-checked against hand-written optax loops, lstsq, the ridge closed form, the
seed's early-stopping rule and its mini-batch sampling; divergence freezing; bad input."""

from __future__ import annotations

import functools
import importlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _seed002 import seed002_data

import gradlab
from gradlab.derivations.mse import mse_mean, mse_mean_grad
from gradlab.optim import ridge
from gradlab.train import _batching

# optax.adam's bias correction computes ``float ** int32`` (optax's tree_bias_correction), which
# strict dtype promotion (conftest.py) refuses: not gradlab's code, so those tests run standard.
ADAM_NEEDS_STANDARD_DTYPES = pytest.mark.standard_dtypes("optax.adam: float ** int32 inside optax")

fit_module = importlib.import_module("gradlab.train._fit")


X, Y = seed002_data()
P0 = {"w": jnp.zeros(1), "b": jnp.zeros(())}
N = X.shape[0]


def ridge_loss(params, X, y, lam):
    return mse_mean(params, X, y) + lam * jnp.sum(params["w"] ** 2)


def ridge_grad(params, X, y, lam):
    g = mse_mean_grad(params, X, y)
    return {"w": g["w"] + 2.0 * lam * params["w"], "b": g["b"]}


# ---- cross-checks against hand-written optax loops ------------------------------------------


def _optax_loop(loss, opt, params, steps, data, batches=None):
    """The textbook loop, one jitted step per Python iteration; full-data loss after each step."""

    @jax.jit
    def step(p, s, d):
        u, s = opt.update(jax.grad(loss)(p, *d), s, p)
        p = optax.apply_updates(p, u)
        return p, s, loss(p, *data)

    s = opt.init(params)
    hist = []
    for t in range(steps):
        d = data if batches is None else tuple(a[batches[t]] for a in data)
        params, s, val = step(params, s, d)
        hist.append(val)
    return params, jnp.stack(hist), s


@pytest.mark.parametrize("name", ["sgd", pytest.param("adam", marks=ADAM_NEEDS_STANDARD_DTYPES)])
def test_matches_handwritten_optax_loop(name):
    opt = optax.sgd(0.02) if name == "sgd" else optax.adam(0.1)
    steps = 60
    res = gradlab.fit(mse_mean, P0, (X, Y), opt, steps)
    p_ref, h_ref, s_ref = _optax_loop(mse_mean, opt, P0, steps, (X, Y))
    np.testing.assert_allclose(res.history["loss"], h_ref, rtol=1e-13)
    chex.assert_trees_all_close(res.params, p_ref, rtol=1e-13, atol=0)
    chex.assert_trees_all_close(res.opt_state, s_ref, rtol=1e-13, atol=0)  # structure too
    assert not res.diverged and res.steps_taken == steps and not res.stopped_early
    np.testing.assert_array_equal(res.history_steps, np.arange(1, steps + 1))


def test_minibatch_matches_handwritten_loop_with_the_same_batches():
    steps, b = 40, 16
    key = jax.random.key(3)
    res = gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.01), steps, key=key, batch_size=b)
    batches = [np.asarray(_batching.without_replacement(key, t, N, b)) for t in range(steps)]
    p_ref, h_ref, _ = _optax_loop(mse_mean, optax.sgd(0.01), P0, steps, (X, Y), batches)
    np.testing.assert_allclose(res.history["loss"], h_ref, rtol=1e-13)
    np.testing.assert_allclose(res.params["w"], p_ref["w"], rtol=1e-13)


def test_hand_gradient_and_autodiff_give_the_same_trajectory():
    lam = jnp.asarray(0.3)
    loss = functools.partial(ridge_loss, lam=lam)
    grad = functools.partial(ridge_grad, lam=lam)
    for kw in ({}, {"key": jax.random.key(0), "batch_size": 8, "sampling": "epochs"}):
        auto = gradlab.fit(loss, P0, (X, Y), optax.sgd(0.01), 100, **kw)
        hand = gradlab.fit(loss, P0, (X, Y), optax.sgd(0.01), 100, grad=grad, **kw)
        for k in P0:
            np.testing.assert_allclose(hand.params[k], auto.params[k], rtol=1e-12, atol=0)
        for k in ("loss", "grad_norm"):
            np.testing.assert_allclose(hand.history[k], auto.history[k], rtol=1e-12, atol=0)


def test_the_hand_gradient_is_the_one_used():
    """sgd with grad 2g at rate lr is sgd with g at 2 lr, bit for bit (scaling by 2 is exact)."""

    def twice(p, X, y):
        return jax.tree.map(lambda g: 2.0 * g, mse_mean_grad(p, X, y))

    a = gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.005), 50, grad=twice)
    b = gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.01), 50)
    chex.assert_trees_all_equal(a.params, b.params)
    c = gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.005), 50)
    assert not np.array_equal(a.params["w"], c.params["w"])


# ---- oracles: lstsq and ridge ---------------------------------------------------------------


def test_gd_on_mse_reaches_lstsq():
    A = np.c_[np.ones(N), np.asarray(X)]
    theta, *_ = np.linalg.lstsq(A, np.asarray(Y), rcond=None)
    lr = float(gradlab.stability.max_stable_lr(mse_mean, P0, X, Y)) / 2  # 1 / lambda_max
    res = gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(lr), 6000, record_every=1000)
    np.testing.assert_allclose(res.params["b"], theta[0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.params["w"], theta[1:], rtol=0, atol=1e-10)


def test_ridge_gd_reaches_the_closed_form():
    lam = 0.5
    A = np.c_[np.ones(N), np.asarray(X)]
    # stationarity of (1/n)||A t - y||^2 + lam ||t[1:]||^2: (A^T A / n + lam D) t = A^T y / n
    D = np.diag([0.0, 1.0])
    theta = np.linalg.solve(A.T @ A / N + lam * D, A.T @ np.asarray(Y) / N)
    loss = functools.partial(ridge_loss, lam=jnp.asarray(lam))
    res = gradlab.fit(loss, P0, (X, Y), optax.sgd(0.02), 4000, record_every=4000)
    np.testing.assert_allclose(res.params["b"], theta[0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.params["w"], theta[1:], rtol=0, atol=1e-10)
    oracle = ridge(X, Y, lam)  # the optim layer's closed form agrees
    np.testing.assert_allclose(res.params["w"], oracle["w"], rtol=0, atol=1e-9)


# ---- divergence -----------------------------------------------------------------------------


def seed_batch_gd(alpha: float, iters: int) -> np.ndarray:
    """Seed 002's ``batch_gd`` (section 5) in numpy, theta = (bias, slope)."""
    A = np.c_[np.ones(N), np.asarray(X)]
    y = np.asarray(Y).reshape(-1, 1)
    theta = np.zeros((2, 1))
    for _ in range(iters):
        theta = theta - alpha * (2 / N) * (A.T @ (A @ theta - y))
    return theta.ravel()


@jax.jit
def _gd_bounded(lr, bound):
    return gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(lr), 100, divergence_bound=bound)


def test_seed_alpha_diverges_and_freezes_at_finite_params():
    steps = 100
    res = gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.05), steps)  # seed 002's alpha
    assert bool(res.diverged) and not bool(res.stopped_early)
    k = int(res.steps_taken)
    assert 0 < k < steps
    for leaf in jax.tree.leaves(res.params):
        assert np.all(np.isfinite(leaf))
    h = np.asarray(res.history["loss"])
    assert np.all(np.isfinite(h))
    bound = 1e6 * float(mse_mean(P0, X, Y))  # the documented default, eq. (2)
    assert h[k - 1] <= bound < float(mse_mean(_as_params(seed_batch_gd(0.05, k + 1)), X, Y))
    np.testing.assert_array_equal(h[k:], h[k - 1])  # frozen after the last accepted step
    assert float(res.loss) == h[-1]
    # the frozen params are the seed's own loop cut after k steps
    theta = seed_batch_gd(0.05, k)
    np.testing.assert_allclose(res.params["b"], theta[0], rtol=1e-12)
    np.testing.assert_allclose(res.params["w"], theta[1:], rtol=1e-12)


def _as_params(theta):
    return {"w": jnp.asarray(theta[1:]), "b": jnp.asarray(theta[0])}


def test_non_finite_loss_is_caught_with_an_infinite_bound():
    res = _gd_bounded(1e150, jnp.inf)
    assert bool(res.diverged)
    assert np.all(np.isfinite(res.history["loss"]))
    assert 0 < int(res.steps_taken) < 100
    for leaf in jax.tree.leaves(res.params):
        assert np.all(np.isfinite(leaf))


def test_explicit_bound():
    res = _gd_bounded(0.05, 1e3)
    h = np.asarray(res.history["loss"])
    assert bool(res.diverged) and np.all(h <= 1e3) and h.max() > 1e2
    calm = _gd_bounded(0.02, 1e3)
    assert not bool(calm.diverged) and int(calm.steps_taken) == 100


# ---- early stopping -------------------------------------------------------------------------

ES_STEPS = 3000


@jax.jit
def _gd_long(lr):
    return gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(lr), ES_STEPS)


@functools.partial(jax.jit, static_argnums=2)
def _gd_early(lr, tol, patience):
    es = gradlab.EarlyStop(tol=tol, patience=patience)
    return gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(lr), ES_STEPS, early_stop=es)


def _stop_step(losses: np.ndarray, loss0: float, tol: float, patience: int) -> int | None:
    """Seed 002's rule in numpy: first step t with `patience` consecutive improvements < tol."""
    prev, run = loss0, 0
    for t, cur in enumerate(losses, start=1):
        run = run + 1 if prev - cur < tol else 0
        prev = cur
        if run >= patience:
            return t
    return None


@pytest.mark.parametrize("tol,patience", [(1e-6, 10), (1e-3, 3)])
def test_early_stop_follows_the_seed_rule(tol, patience):
    full = _gd_long(0.01)
    stop = _stop_step(np.asarray(full.history["loss"]), float(mse_mean(P0, X, Y)), tol, patience)
    assert stop is not None and stop < ES_STEPS
    res = _gd_early(0.01, tol, patience)
    assert bool(res.stopped_early) and not bool(res.diverged)
    assert int(res.steps_taken) == stop
    h = np.asarray(res.history["loss"])
    np.testing.assert_allclose(h[:stop], np.asarray(full.history["loss"])[:stop], rtol=1e-14)
    np.testing.assert_array_equal(h[stop:], h[stop - 1])


def test_early_stop_that_never_triggers():
    res = _gd_early(0.01, 0.0, 3)  # improvement < 0 never happens under stable GD here
    assert not bool(res.stopped_early) and int(res.steps_taken) == ES_STEPS


# ---- history, metrics, precision ------------------------------------------------------------


def test_strided_history_and_metrics():
    metrics = {"b": lambda p: p["b"], "w_norm": lambda p: jnp.linalg.norm(p["w"])}
    full = gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.02), 120, metrics=metrics)
    res = gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.02), 120, record_every=40, metrics=metrics)
    np.testing.assert_array_equal(res.history_steps, [40, 80, 120])
    assert set(res.history) == {"loss", "grad_norm", "b", "w_norm"}
    for k, h in res.history.items():
        assert h.shape == (3,)
        np.testing.assert_allclose(h, np.asarray(full.history[k])[39::40], rtol=1e-13)
    # grad_norm is the full-data gradient's norm at the recorded params, eq. (5)
    g = mse_mean_grad(res.params, X, Y)
    np.testing.assert_allclose(res.history["grad_norm"][-1], optax.tree.norm(g), rtol=1e-13)
    np.testing.assert_allclose(res.history["b"][-1], res.params["b"], rtol=0)


def test_minibatch_history_uses_full_data():
    res = gradlab.fit(
        mse_mean,
        P0,
        (X, Y),
        optax.sgd(0.01),
        60,
        key=jax.random.key(1),
        batch_size=10,
        record_every=20,
    )
    np.testing.assert_allclose(res.history["loss"][-1], mse_mean(res.params, X, Y), rtol=1e-13)
    g = optax.tree.norm(mse_mean_grad(res.params, X, Y))
    np.testing.assert_allclose(res.history["grad_norm"][-1], g, rtol=1e-13)


@pytest.mark.parametrize("precision", ["highest", "tensorfloat32"])
def test_precision_is_applied_and_recorded(precision):
    X32, Y32 = X.astype(jnp.float32), Y.astype(jnp.float32)
    p32 = jax.tree.map(lambda a: a.astype(jnp.float32), P0)

    def run(lr):
        return gradlab.fit(mse_mean, p32, (X32, Y32), optax.sgd(lr), 4, precision=precision)

    jaxpr = str(jax.make_jaxpr(run)(jnp.float32(0.01)))
    want = "HIGHEST" if precision == "highest" else "HIGH"
    dots = [ln for ln in jaxpr.splitlines() if "precision=" in ln]
    assert dots and all(f"Precision.{want}," in ln for ln in dots), dots[:2]
    assert jax.eval_shape(run, jnp.float32(0.01)).precision == precision


# ---- mini-batch sampling --------------------------------------------------------------------


def test_sampling_without_replacement_has_distinct_indices():
    key = jax.random.key(0)
    idx = jax.vmap(lambda t: _batching.without_replacement(key, t, 20, 7))(jnp.arange(50))
    idx = np.asarray(idx)
    assert idx.shape == (50, 7) and idx.min() >= 0 and idx.max() < 20
    for row in idx:
        assert len(set(row.tolist())) == 7
    assert len({tuple(r) for r in idx.tolist()}) > 40  # independent draws per step


@pytest.mark.parametrize("n,b", [(20, 5), (23, 5)])
def test_epochs_cover_every_index_once_per_epoch(n, b):
    key = jax.random.key(1)
    per_epoch = n // b
    idx = np.asarray(jax.vmap(lambda t: _batching.epochs(key, t, n, b))(jnp.arange(3 * per_epoch)))
    epochs = idx.reshape(3, per_epoch * b)
    for e in epochs:
        assert len(set(e.tolist())) == per_epoch * b  # each index at most once per epoch
        if n % b == 0:
            assert sorted(e.tolist()) == list(range(n))  # and every index exactly once
    assert not np.array_equal(epochs[0], epochs[1])  # a fresh permutation per epoch


# ---- bad input, raised before the loop is traced --------------------------------------------


@pytest.fixture
def no_trace(monkeypatch):
    """Fail the test if fit gets as far as tracing its loop."""

    def boom(*a, **k):
        raise AssertionError("fit traced its loop before rejecting bad input")

    monkeypatch.setattr(fit_module, "_run", boom)


SGD = optax.sgd(0.01)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"data": (X, Y[:-1])}, ValueError, r"leading axis.*data\[0\] has 80 rows but data\[1\]"),
        ({"data": X}, TypeError, "data must be a tuple"),
        ({"data": (X, jnp.asarray(1.0))}, ValueError, r"data\[1\] must have a leading axis"),
        ({"params0": {"w": jnp.zeros(3), "b": jnp.zeros(())}}, ValueError, r"loss\(params0"),
        ({"params0": {"w": jnp.zeros(1)}}, ValueError, r"loss\(params0, \*data\) failed"),
        ({"params0": {"w": jnp.zeros(1, int), "b": 0}}, TypeError, "floating"),
        ({"steps": 0}, ValueError, "steps must be >= 1"),
        ({"steps": 10.0}, TypeError, "steps must be a Python int"),
        ({"record_every": 3}, ValueError, "record_every must divide steps"),
        ({"batch_size": 81, "key": jax.random.key(0)}, ValueError, r"batch_size must be <= n"),
        ({"batch_size": 8}, ValueError, "key is required"),
        ({"batch_size": 0, "key": jax.random.key(0)}, ValueError, "batch_size must be >= 1"),
        ({"sampling": "bootstrap"}, ValueError, "sampling must be one of"),
        ({"precision": "fp8"}, ValueError, "precision must be one of"),
        (
            {"optimizer": optax.inject_hyperparams(optax.sgd)(learning_rate=-0.1)},
            ValueError,
            "learning_rate must be > 0",
        ),
        (
            {"optimizer": optax.inject_hyperparams(optax.adam)(learning_rate=0.0)},
            ValueError,
            "learning_rate must be > 0",
        ),
        ({"optimizer": lambda g: g}, TypeError, "optax.GradientTransformation"),
        ({"grad": lambda p, X, y: {"w": p["w"]}}, ValueError, "pytree structure of params0"),
        (
            {"grad": lambda p, X, y: {"w": jnp.zeros(2), "b": p["b"]}},
            ValueError,
            r"leaf \['w'\] has shape \(2,\)",
        ),
        ({"loss": lambda p, X, y: X @ p["w"]}, ValueError, "must return a scalar"),
        ({"early_stop": (1e-6, 10)}, TypeError, "EarlyStop"),
        ({"early_stop": gradlab.EarlyStop(patience=0)}, ValueError, "patience must be >= 1"),
        ({"early_stop": gradlab.EarlyStop(tol=-1.0)}, ValueError, "tol must be >= 0"),
        ({"divergence_bound": -1.0}, ValueError, "divergence_bound must be > 0"),
        ({"metrics": {"loss": lambda p: p["b"]}}, ValueError, "taken"),
        (
            {"metrics": {"w": lambda p: p["w"]}},
            ValueError,
            r"metrics\['w'\]\(params0\) must return a scalar",
        ),
    ],
)
def test_bad_input_is_rejected_before_tracing(no_trace, kwargs, exc, match):
    args = {"loss": mse_mean, "params0": P0, "data": (X, Y), "optimizer": SGD, "steps": 10}
    args.update(kwargs)
    loss, params0, data, optimizer, steps = (
        args.pop(k) for k in ("loss", "params0", "data", "optimizer", "steps")
    )
    with pytest.raises(exc, match=match):
        gradlab.fit(loss, params0, data, optimizer, steps, **args)


def test_good_input_passes_the_checks_and_reaches_the_loop(no_trace):
    with pytest.raises(AssertionError, match="traced its loop"):
        gradlab.fit(mse_mean, P0, (X, Y), SGD, 10)
