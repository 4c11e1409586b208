"""Exponentiated gradient and projected steps (``gradlab.optim``) on the probability simplex.

The two methods solve the same simplex-constrained least squares
``min_{theta in simplex} 1/(2n) ||X theta - y||^2`` by different geometries (KL vs Euclidean);
they must meet at the optimum, which the KKT conditions certify independently.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _optim_loop import compiled

import gradlab
from gradlab.optim import ExponentiatedGradientState, exponentiated_gradient, project, projected

# optax.projections.projection_simplex divides a float by an int64 index range inside optax,
# which strict dtype promotion (conftest.py) refuses: not gradlab's code, so those tests run
# under standard promotion.
SIMPLEX_PROJECTION_NEEDS_STANDARD_DTYPES = pytest.mark.standard_dtypes(
    "optax.projections.projection_simplex: float64 with int64 inside optax"
)


def _seed_mirror_descent_step(grad, theta_t, eta):
    """Seed 000, section 4, verbatim."""
    theta_new = theta_t * np.exp(-eta * grad)
    theta_new = np.clip(theta_new, 1e-12, None)
    return theta_new / np.sum(theta_new)


def _ls_loss(theta, X, y):
    r = X @ theta - y
    return 0.5 * jnp.dot(r, r) / X.shape[0]


GRAD = jax.grad(_ls_loss)
EG = compiled(GRAD, exponentiated_gradient, 3000)
PG = compiled(GRAD, lambda lr: projected(optax.sgd(lr), optax.projections.projection_simplex), 2000)


@pytest.fixture(scope="module")
def simplex_ls():
    """Seed 000's setup (n=100, d=5) with one true weight 0: the optimum lies on a face."""
    rng = np.random.default_rng(0)
    n, d = 100, 5
    X = rng.normal(size=(n, d))
    y = X @ np.array([0.0, 0.1, 0.5, 0.15, 0.25]) + 0.1 * rng.normal(size=n)
    H = X.T @ X / n
    return X, y, float(np.linalg.eigvalsh(H).max()), float(np.abs(H).max())


def _one_step(opt, grads, params):
    updates, state = jax.jit(opt.update)(grads, opt.init(params), params)
    return optax.apply_updates(params, updates), state


class TestSameOptimum:
    @SIMPLEX_PROJECTION_NEEDS_STANDARD_DTYPES
    def test_eg_and_projected_gradient_agree(self, simplex_ls):
        X, y, L, L_inf = simplex_ls
        theta0 = jnp.full(5, 0.2)
        # EG is smooth w.r.t. the l1 norm with constant max|H_ij|; PG w.r.t. l2 with lambda_max.
        theta_eg, state, _ = EG(theta0, (1 / L_inf,), X, y)
        theta_pg, _, _ = PG(theta0, (1 / L,), X, y)
        np.testing.assert_allclose(theta_eg, theta_pg, rtol=0, atol=1e-8)
        # KKT, independent of both: on the support the gradient equals a common nu, off it
        # the gradient is larger; here coordinate 0 is off the support.
        g = np.asarray(GRAD(theta_pg, X, y))
        support = np.asarray(theta_pg) > 1e-12
        assert support.tolist() == [False, True, True, True, True]
        nu = g[support].mean()
        np.testing.assert_allclose(g[support], nu, rtol=0, atol=1e-10)
        assert (g[~support] > nu + 1e-3).all()
        # EG's state holds the log-weights: the off-support weight is tiny but not 0.
        assert isinstance(state, ExponentiatedGradientState)
        assert np.isfinite(state.log_params).all() and state.log_params[0] < -20

    @SIMPLEX_PROJECTION_NEEDS_STANDARD_DTYPES
    def test_iterates_stay_on_the_simplex(self, simplex_ls):
        X, y, L, L_inf = simplex_ls
        for theta in (
            EG(jnp.full(5, 0.2), (1 / L_inf,), X, y)[0],
            PG(jnp.full(5, 0.2), (1 / L,), X, y)[0],
        ):
            assert (np.asarray(theta) >= 0).all()
            np.testing.assert_allclose(float(jnp.sum(theta)), 1.0, rtol=0, atol=1e-14)

    def test_through_gradlab_fit(self, simplex_ls):
        # The package's own loop drives the transformation like the local one, step for step.
        X, y, _, L_inf = simplex_ls
        eta = np.asarray(1 / L_inf)
        res = jax.jit(
            lambda t0: gradlab.fit(
                _ls_loss, t0, (X, y), exponentiated_gradient(eta), 3000, record_every=3000
            )
        )(jnp.full(5, 0.2))
        local, _, _ = EG(jnp.full(5, 0.2), (eta,), X, y)
        np.testing.assert_allclose(res.params, local, rtol=1e-13, atol=1e-15)
        assert not bool(res.diverged) and int(res.steps_taken) == 3000

    def test_vmap_over_learning_rate(self, simplex_ls):
        X, y, _, L_inf = simplex_ls
        etas = np.array([0.5, 1.0]) / L_inf
        batched = jax.vmap(lambda eta: EG.jitted(jnp.full(5, 0.2), (eta,), X, y)[0])(etas)
        for i, eta in enumerate(etas):
            single = EG(jnp.full(5, 0.2), (eta,), X, y)[0]
            np.testing.assert_allclose(batched[i], single, rtol=1e-13, atol=1e-16)


class TestExponentiatedGradient:
    def test_matches_the_seed_on_a_benign_case(self):
        rng = np.random.default_rng(3)
        theta, eta = np.full(5, 0.2), 0.3
        opt = exponentiated_gradient(eta)
        params, state = jnp.asarray(theta), None
        step = jax.jit(opt.update)
        state = opt.init(params)
        for _ in range(10):
            g = rng.normal(size=5)
            theta = _seed_mirror_descent_step(g, theta, eta)
            updates, state = step(jnp.asarray(g), state, params)
            params = optax.apply_updates(params, updates)
            np.testing.assert_allclose(params, theta, rtol=1e-14)

    def test_huge_gradients_stay_finite_and_correct(self):
        # exp(-eta g) underflows to 0 in every coordinate: the naive update is 0/0 = NaN, the
        # seed's clip turns it into the uniform vector (wrong: the step should move all the
        # mass to the smallest gradient), the log-domain update gives that exactly.
        g = np.array([1e4, 2e4, 3e4])
        theta = np.full(3, 1 / 3)
        with np.errstate(invalid="ignore"):
            naive = theta * np.exp(-g) / np.sum(theta * np.exp(-g))
        assert np.isnan(naive).all()
        np.testing.assert_allclose(_seed_mirror_descent_step(g, theta, 1.0), theta)
        new, state = _one_step(exponentiated_gradient(1.0), jnp.asarray(g), jnp.asarray(theta))
        np.testing.assert_array_equal(new, [1.0, 0.0, 0.0])
        # the state remembers how small the others are (log-weights -1e4, -2e4), finitely
        np.testing.assert_allclose(state.log_params, [0.0, -1e4, -2e4], rtol=1e-12, atol=1e-12)

    def test_overflowing_step_gives_no_nan(self):
        # eta * g overflows to inf in every coordinate: without the shift by min(g) of eq. (2)
        # logsumexp(-inf, ...) is -inf and the update is NaN; with it, the mass moves to the
        # smallest gradient.
        g = jnp.array([1e307, 2e307, 3e307])
        new, _ = _one_step(exponentiated_gradient(100.0), g, jnp.full(3, 1 / 3))
        np.testing.assert_array_equal(new, [1.0, 0.0, 0.0])

    def test_a_weight_pushed_to_exp_minus_1000_comes_back(self):
        # Stored as log-weight -1000, not as 0.0 in the params (where log 0 = -inf would trap it).
        opt = exponentiated_gradient(1.0)
        step = jax.jit(opt.update)
        params = jnp.array([0.5, 0.5])
        state = opt.init(params)
        updates, state = step(jnp.array([1000.0, 0.0]), state, params)
        params = optax.apply_updates(params, updates)
        assert float(params[0]) == 0.0  # underflowed in the params...
        updates, state = step(jnp.array([-2000.0, 0.0]), state, params)
        params = optax.apply_updates(params, updates)
        np.testing.assert_allclose(params, [1.0, 0.0], atol=1e-300)  # ...but it came back

    def test_rows_of_a_matrix_leaf_are_separate_simplices(self):
        params = {"pi": jnp.array([[0.5, 0.5], [0.9, 0.1]])}
        grads = {"pi": jnp.array([[1.0, 0.0], [0.0, 0.0]])}
        new, _ = _one_step(exponentiated_gradient(0.5), grads, params)
        want_row0 = np.array([np.exp(-0.5), 1.0]) / (np.exp(-0.5) + 1.0)
        np.testing.assert_allclose(new["pi"][0], want_row0, rtol=1e-15)
        np.testing.assert_allclose(new["pi"][1], [0.9, 0.1], rtol=1e-15)

    def test_zero_weights_stay_zero(self):
        new, _ = _one_step(
            exponentiated_gradient(1.0), jnp.array([5.0, 0.0, -5.0]), jnp.array([0.0, 0.5, 0.5])
        )
        assert float(new[0]) == 0.0 and np.isfinite(np.asarray(new)).all()

    def test_schedule_and_inject_hyperparams(self):
        g, theta = jnp.array([1.0, -1.0]), jnp.array([0.5, 0.5])
        a, _ = _one_step(exponentiated_gradient(optax.constant_schedule(0.7)), g, theta)
        b, _ = _one_step(
            optax.inject_hyperparams(exponentiated_gradient)(learning_rate=0.7), g, theta
        )
        want = np.array([np.exp(-0.7), np.exp(0.7)]) / (np.exp(-0.7) + np.exp(0.7))
        np.testing.assert_allclose(a, want, rtol=1e-15)
        np.testing.assert_allclose(b, want, rtol=1e-15)

    def test_simplex_leaf_of_a_larger_model(self):
        # Mixture weights on the simplex, means free: optax.partition routes each leaf.
        params = {"mu": jnp.array([0.0, 2.0]), "pi": jnp.array([0.25, 0.75])}
        grads = {"mu": jnp.array([1.0, -1.0]), "pi": jnp.array([1.0, 0.0])}
        opt = optax.partition(
            {"simplex": exponentiated_gradient(0.5), "free": optax.sgd(0.1)},
            {"mu": "free", "pi": "simplex"},
        )
        new, _ = _one_step(opt, grads, params)
        w = np.array([0.25 * np.exp(-0.5), 0.75])
        np.testing.assert_allclose(new["pi"], w / w.sum(), rtol=1e-15)
        np.testing.assert_allclose(new["mu"], [-0.1, 2.1], rtol=1e-15)
        # routing the free leaf to EG by mistake is caught at init, naming the leaf
        wrong = optax.partition(
            {"simplex": exponentiated_gradient(0.5)}, {"mu": "simplex", "pi": "simplex"}
        )
        with pytest.raises(ValueError, match=r"params\['mu'\] must sum to 1"):
            wrong.init(params)

    def test_float32(self):
        theta = jnp.full(4, 0.25, jnp.float32)
        new, state = _one_step(
            exponentiated_gradient(0.1), jnp.array([1e3, 0, 0, 0], jnp.float32), theta
        )
        assert new.dtype == jnp.float32 and state.log_params.dtype == jnp.float32
        np.testing.assert_allclose(
            new, [0.0, 1 / 3, 1 / 3, 1 / 3], atol=4 * np.finfo(np.float32).eps
        )


class TestProjected:
    @SIMPLEX_PROJECTION_NEEDS_STANDARD_DTYPES
    def test_lands_on_the_simplex_from_anywhere(self):
        opt = projected(optax.sgd(0.1), optax.projections.projection_simplex)
        params = jnp.array([0.6, 0.1, 0.5, -0.4])  # infeasible start
        new, _ = _one_step(opt, jnp.array([1.0, -2.0, 0.0, 1.0]), params)
        # x - 0.1 g = [0.5, 0.3, 0.5, -0.5]; its projection subtracts tau = 0.1 from the
        # entries above tau and zeroes the rest: [0.4, 0.2, 0.4, 0]. x + u is one rounding away.
        np.testing.assert_allclose(new, [0.4, 0.2, 0.4, 0.0], rtol=0, atol=1e-15)
        assert (np.asarray(new) >= 0).all()
        np.testing.assert_allclose(float(new.sum()), 1.0, atol=1e-15)

    def test_projection_of_part_of_the_tree(self):
        # A box on w only (via the projection's own tree), b free.
        proj = lambda p: {"w": optax.projections.projection_box(p["w"], -1.0, 1.0), "b": p["b"]}  # noqa: E731
        opt = projected(optax.sgd(1.0, momentum=0.9), proj)
        params = {"w": jnp.array([0.0, 0.9]), "b": jnp.asarray(0.0)}
        grads = {"w": jnp.array([-5.0, -0.05]), "b": jnp.asarray(-5.0)}
        new, _ = _one_step(opt, grads, params)
        np.testing.assert_allclose(new["w"], [1.0, 0.95], rtol=1e-15)
        np.testing.assert_allclose(new["b"], 5.0, rtol=1e-15)

    def test_with_optax_masked(self):
        opt = optax.chain(
            optax.sgd(1.0),
            optax.masked(
                project(optax.projections.projection_non_negative), {"w": True, "b": False}
            ),
        )
        params = {"w": jnp.array([0.5, 0.5]), "b": jnp.asarray(0.0)}
        grads = {"w": jnp.array([1.0, -1.0]), "b": jnp.asarray(1.0)}
        new, _ = _one_step(opt, grads, params)
        np.testing.assert_allclose(new["w"], [0.0, 1.5], rtol=1e-15)
        np.testing.assert_allclose(new["b"], -1.0, rtol=1e-15)
