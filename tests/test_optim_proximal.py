"""Soft-thresholding, ISTA and FISTA (``gradlab.optim.proximal``) against scikit-learn.

scikit-learn's ``Lasso(alpha)`` minimizes ``1/(2n)||y - Xw - b||^2 + alpha ||w||_1`` (intercept
unpenalized), i.e. ``mse_half_mean + lam ||w||_1`` with ``lam = alpha``; ``ElasticNet(alpha,
l1_ratio)`` adds ``alpha (1 - l1_ratio)/2 ||w||^2``, i.e. ``lam1 = alpha l1_ratio`` and
``lam2 = alpha (1 - l1_ratio)``. Both are run at ``tol=1e-12`` (their default tolerance stops
about 1e-2 away from the optimum: never compare against it).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _optim_loop import compiled, run
from sklearn.linear_model import ElasticNet, Lasso

import gradlab
from gradlab.derivations import elastic_net as en
from gradlab.derivations import mse
from gradlab.optim import FistaState, fista, fista_iterate, ista, prox_l1, soft_threshold

MASK = {"w": True, "b": False}
GRAD = mse.mse_half_mean_grad  # the smooth part f of F = f + lam1 |w|_1 + lam2/2 |w|^2


def _lipschitz(X):
    """L = lambda_max of the Hessian of mse_half_mean over (w, b)."""
    A = np.c_[np.ones(X.shape[0]), np.asarray(X)]
    return float(np.linalg.eigvalsh(A.T @ A / X.shape[0]).max())


@pytest.fixture(scope="module")
def lasso_data():
    rng = np.random.default_rng(0)
    n, d = 60, 8
    X = rng.normal(size=(n, d))
    w_true = np.array([1.5, -2.0, 0.0, 0.0, 0.7, 0.0, 0.0, 0.1])
    y = X @ w_true + 3.0 + 0.5 * rng.normal(size=n)
    return X, y


def _params0(d, dtype=jnp.float64):
    return {"w": jnp.zeros(d, dtype), "b": jnp.zeros((), dtype)}


def _sk_params(model):
    return {"w": model.coef_, "b": np.asarray(model.intercept_)}


def _assert_params_close(got, want, atol):
    for k in ("w", "b"):
        np.testing.assert_allclose(np.asarray(got[k]), want[k], rtol=0, atol=atol, err_msg=k)


# One compiled loop per algorithm, shared by the tests: hyperparameters (restart included) are
# traced arguments, so every Lasso / elastic-net / restart-or-not run below reuses one compile.
FISTA = compiled(
    GRAD, lambda lr, lam, l2, restart: fista(lr, lam, l2=l2, mask=MASK, restart=restart), 300
)
ISTA = compiled(GRAD, lambda lr, lam, l2: ista(lr, lam, l2=l2, mask=MASK), 600)


def _numpy_fista(X, y, lr, lam, l2, restart, steps):
    """Textbook FISTA (Beck-Teboulle) with O'Donoghue-Candes gradient restart, in numpy.

    Returns the sequences (y_k, x_k, restarts_k) for k = 1..steps, the bias unpenalized.
    """
    n, d = X.shape
    A = np.c_[X, np.ones(n)]  # (w, b) stacked
    pen = np.r_[np.ones(d, bool), False]
    x_prev = np.zeros(d + 1)
    yk, t, restarts = x_prev.copy(), 1.0, 0
    ys, xs, rs = [], [], []
    for _ in range(steps):
        g = (A @ yk - y) @ A / n
        z = yk - lr * g
        x = z.copy()
        x[pen] = np.sign(z[pen]) * np.maximum(np.abs(z[pen]) - lr * lam, 0) / (1 + lr * l2)
        if restart and np.dot(yk - x, x - x_prev) > 0:
            t, restarts = 1.0, restarts + 1
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        yk = x + (t - 1) / t_next * (x - x_prev)
        x_prev, t = x, t_next
        ys.append(yk.copy())
        xs.append(x.copy())
        rs.append(restarts)
    return np.array(ys), np.array(xs), np.array(rs)


class TestSoftThreshold:
    def test_values(self):
        z = jnp.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
        got = soft_threshold(z, 1.0)
        np.testing.assert_array_equal(got, [-2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0])

    def test_is_the_prox_of_l1(self):
        # S_tau(z) = argmin_x 1/2 (x - z)^2 + tau |x|: check optimality on a grid of step 1e-4.
        z, tau = np.array([-2.3, -0.4, 0.1, 0.9, 1.7]), 0.6
        grid = np.linspace(-3, 3, 60_001)
        obj = 0.5 * (grid[None, :] - z[:, None]) ** 2 + tau * np.abs(grid)[None, :]
        got = np.asarray(soft_threshold(jnp.asarray(z), tau))
        np.testing.assert_allclose(got, grid[np.argmin(obj, axis=1)], atol=1e-4)

    def test_keeps_dtype(self):
        z = jnp.array([1.5, -0.2], jnp.float32)
        assert soft_threshold(z, 0.5).dtype == jnp.float32


class TestLassoAgainstSklearn:
    @pytest.mark.parametrize("restart", [True, False])
    @pytest.mark.parametrize("alpha", [0.1, 0.5])
    def test_fista(self, lasso_data, alpha, restart):
        X, y = lasso_data
        sk = _sk_params(Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, y))
        _, state, _ = FISTA(_params0(X.shape[1]), (1 / _lipschitz(X), alpha, 0.0, restart), X, y)
        x = fista_iterate(state)
        _assert_params_close(x, sk, atol=1e-8)
        # The answer is sparse exactly where sklearn's is: soft-thresholding gives true zeros.
        np.testing.assert_array_equal(np.asarray(x["w"]) == 0, sk["w"] == 0)
        assert (sk["w"] == 0).sum() >= 2
        if not restart:
            assert int(state.restarts) == 0

    def test_ista_reaches_the_same_point(self, lasso_data):
        X, y = lasso_data
        sk = _sk_params(Lasso(alpha=0.1, tol=1e-12, max_iter=100_000).fit(X, y))
        params, _, _ = ISTA(_params0(X.shape[1]), (1 / _lipschitz(X), 0.1, 0.0), X, y)
        _assert_params_close(params, sk, atol=1e-8)

    def test_objective_is_minimal_there(self, lasso_data):
        # An independent witness: F (gradlab.derivations.elastic_net) at FISTA's point is lower
        # than at random perturbations of it.
        X, y = lasso_data
        _, state, _ = FISTA(_params0(X.shape[1]), (1 / _lipschitz(X), 0.1, 0.0, True), X, y)
        x = fista_iterate(state)
        f = float(en.elastic_net(x, X, y, 0.1, 0.0))
        rng = np.random.default_rng(1)
        for _ in range(5):
            p = jax.tree.map(lambda a: a + 1e-4 * rng.normal(size=a.shape), x)
            assert float(en.elastic_net(p, X, y, 0.1, 0.0)) > f

    def test_float32_run(self, lasso_data):
        X, y = (jnp.asarray(a, jnp.float32) for a in lasso_data)
        sk = _sk_params(Lasso(alpha=0.1, tol=1e-12, max_iter=100_000).fit(*lasso_data))
        _, state, _ = FISTA(_params0(8, jnp.float32), (1 / _lipschitz(X), 0.1, 0.0, True), X, y)
        x = fista_iterate(state)
        assert x["w"].dtype == jnp.float32 and state.t.dtype == jnp.float32
        # float32: a few hundred eps of the data scale (|y| ~ 5)
        _assert_params_close(x, sk, atol=500 * np.finfo(np.float32).eps * 5)


class TestElasticNetAgainstSklearn:
    @pytest.mark.parametrize("l1_ratio", [0.3, 0.8])
    def test_fista_and_ista(self, lasso_data, l1_ratio):
        X, y = lasso_data
        alpha = 0.2
        model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000)
        sk = _sk_params(model.fit(X, y))
        hyper = (1 / _lipschitz(X), alpha * l1_ratio, alpha * (1 - l1_ratio))
        _, state, _ = FISTA(_params0(X.shape[1]), (*hyper, True), X, y)
        _assert_params_close(fista_iterate(state), sk, atol=1e-8)
        params, _, _ = ISTA(_params0(X.shape[1]), hyper, X, y)
        _assert_params_close(params, sk, atol=1e-8)


class TestFistaSteps:
    """Step by step against a textbook numpy FISTA: y_k (the params), x_k (the state), restarts."""

    TRACE = staticmethod(
        compiled(
            GRAD,
            lambda lr, lam, l2, restart: fista(lr, lam, l2=l2, mask=MASK, restart=restart),
            40,
            metric=lambda p, s: (p, s.x, s.restarts),
        )
    )

    @pytest.mark.parametrize("restart", [True, False])
    def test_trajectory(self, lasso_data, restart):
        X, y = lasso_data
        hyper = (1 / _lipschitz(X), 0.1, 0.05)
        ys, xs, rs = _numpy_fista(X, y, *hyper, restart, 40)
        _, _, (p_hist, x_hist, r_hist) = self.TRACE(_params0(8), (*hyper, restart), X, y)
        for got, want in ((p_hist, ys), (x_hist, xs)):
            np.testing.assert_allclose(got["w"], want[:, :-1], rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(got["b"], want[:, -1], rtol=1e-12, atol=1e-13)
        np.testing.assert_array_equal(r_hist, rs)
        assert (rs[-1] > 0) == restart  # the data does trigger restarts
        # The params are the extrapolated points, not the iterates.
        assert np.abs(ys - xs).max() > 1e-3


class TestAdaptiveRestart:
    def test_fewer_steps_on_an_ill_conditioned_problem(self):
        rng = np.random.default_rng(1)
        n, d = 40, 10
        X = rng.normal(size=(n, d)) * np.geomspace(1, 0.02, d)[None, :]  # kappa(H) ~ 8e3
        y = 3 * X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
        alpha = 1e-3
        sk = Lasso(alpha=alpha, tol=1e-14, max_iter=1_000_000).fit(X, y)
        steps, tol = 2500, 1e-8
        f = compiled(
            GRAD,
            lambda lr, restart: fista(lr, alpha, mask=MASK, restart=restart),
            steps,
            metric=lambda p, s: jnp.max(jnp.abs(fista_iterate(s)["w"] - sk.coef_)),
        )

        def steps_to(restart):
            _, state, hist = f(_params0(d), (1 / _lipschitz(X), restart), X, y)
            above = np.flatnonzero(np.asarray(hist) >= tol)  # stays below tol after this
            first = 0 if above.size == 0 else above[-1] + 1
            return (first if first < steps else None), int(state.restarts)

        with_restart, n_restarts = steps_to(True)
        plain, _ = steps_to(False)
        assert with_restart is not None and n_restarts > 0
        # Plain FISTA oscillates (it has not settled below tol in `steps`); restart settles in
        # well under half of that.
        assert plain is None or with_restart < plain / 2
        assert with_restart < steps / 2


class TestComposition:
    def test_prox_l1_after_sgd_is_one_ista_step(self):
        # x+ = S_{lr lam}(x - lr g) on w, x - lr g on b.
        lr, lam = 0.5, 0.4
        params = {"w": jnp.array([1.0, -0.1, 0.3]), "b": jnp.asarray(0.2)}
        grads = {"w": jnp.array([0.5, 0.2, -1.0]), "b": jnp.asarray(-0.4)}
        opt = optax.chain(optax.sgd(lr), prox_l1(lr * lam, MASK))
        updates, _ = jax.jit(opt.update)(grads, opt.init(params), params)
        new = optax.apply_updates(params, updates)
        np.testing.assert_allclose(new["w"], [0.55, 0.0, 0.6], rtol=1e-15)
        np.testing.assert_allclose(new["b"], 0.4, rtol=1e-15)
        # ista is that chain
        u2, _ = jax.jit(ista(lr, lam, mask=MASK).update)(grads, opt.init(params), params)
        chex.assert_trees_all_equal(updates, u2)

    def test_mask_leaves_bias_unpenalized(self):
        # A gradient of +-0.3 against a threshold of 0.5: w stays 0, b takes the full step.
        opt = optax.chain(optax.sgd(1.0), prox_l1(0.5, MASK))
        params = {"w": jnp.zeros(2), "b": jnp.zeros(())}
        grads = {"w": jnp.array([0.3, -0.3]), "b": jnp.asarray(0.3)}
        updates, _ = jax.jit(opt.update)(grads, opt.init(params), params)
        np.testing.assert_array_equal(updates["w"], [0.0, 0.0])
        assert float(updates["b"]) == -0.3

    def test_callable_mask_equals_pytree_mask(self):
        by_ndim = lambda p: jax.tree.map(lambda a: a.ndim == 1, p)  # noqa: E731
        params = {"w": jnp.array([0.2, -0.05]), "b": jnp.asarray(0.01)}
        grads = {"w": jnp.array([0.1, 0.1]), "b": jnp.asarray(0.1)}
        a = fista(0.5, 0.3, mask=by_ndim)
        b = fista(0.5, 0.3, mask=MASK)
        ua, sa = jax.jit(a.update)(grads, a.init(params), params)
        ub, sb = jax.jit(b.update)(grads, b.init(params), params)
        chex.assert_trees_all_equal((ua, sa), (ub, sb))

    def test_fista_iterate_through_chain_and_inject_hyperparams(self, lasso_data):
        X, y = lasso_data
        lr = 1 / _lipschitz(X)
        opt = optax.chain(
            optax.identity(),
            optax.inject_hyperparams(fista)(learning_rate=lr, lam=0.1, mask=MASK, restart=True),
        )
        _, state, _ = jax.jit(lambda p: run(GRAD, opt, p, 300, X, y))(_params0(8))
        _, ref, _ = FISTA(_params0(8), (lr, 0.1, 0.0, True), X, y)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15),
            fista_iterate(state),
            fista_iterate(ref),
        )
        assert isinstance(ref, FistaState)

    def test_through_gradlab_fit(self, lasso_data):
        # gradlab.fit returns the params, i.e. FISTA's y_k: at convergence they are the lasso
        # solution too, zeros included.
        X, y = lasso_data
        sk = _sk_params(Lasso(alpha=0.1, tol=1e-12, max_iter=100_000).fit(X, y))
        opt = fista(1 / _lipschitz(X), 0.1, mask=MASK)
        res = gradlab.fit(
            mse.mse_half_mean, _params0(8), (X, y), opt, 300, grad=GRAD, record_every=300
        )
        _assert_params_close(res.params, sk, atol=1e-8)
        np.testing.assert_array_equal(np.asarray(res.params["w"]) == 0, sk["w"] == 0)

    def test_vmap_over_lam_equals_single_runs(self, lasso_data):
        X, y = lasso_data
        lr = np.asarray(1 / _lipschitz(X))
        lams = np.array([0.05, 0.1, 0.3])
        zero, on = np.asarray(0.0), np.asarray(True)
        batched = jax.vmap(lambda lam: FISTA.jitted(_params0(8), (lr, lam, zero, on), X, y)[1].x)
        xs = batched(lams)
        for i, lam in enumerate(lams):
            single = FISTA(_params0(8), (lr, lam, 0.0, True), X, y)[1].x
            jax.tree.map(
                lambda a, b, i=i: np.testing.assert_allclose(a[i], b, rtol=1e-12, atol=1e-14),
                xs,
                single,
            )
