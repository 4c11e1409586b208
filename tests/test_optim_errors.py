"""Bad input to ``gradlab.optim``: errors name the argument, what was expected and what came.

All raised eagerly, before any compilation: at construction (hyperparameters) or at ``init``
(params, masks).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradlab.optim import (
    exponentiated_gradient,
    fista,
    fista_iterate,
    ista,
    lstsq,
    normal_equation,
    project,
    projected,
    prox_elastic_net,
    prox_l1,
    ridge,
    ridge_path,
)

PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}


class TestHyperparameters:
    @pytest.mark.parametrize("lr", [0.0, -0.1, np.float64(-1.0), jnp.asarray(0.0)])
    @pytest.mark.parametrize(
        "factory",
        [
            exponentiated_gradient,
            lambda lr: ista(lr, 0.1),
            lambda lr: fista(lr, 0.1),
        ],
        ids=["eg", "ista", "fista"],
    )
    def test_non_positive_learning_rate(self, factory, lr):
        with pytest.raises(ValueError, match=r"learning_rate must be > 0.*got"):
            factory(lr)

    @pytest.mark.parametrize("lr", [jnp.array([0.1, 0.2]), "0.1", None])
    def test_learning_rate_not_a_scalar(self, lr):
        with pytest.raises((TypeError, ValueError), match="learning_rate"):
            fista(lr, 0.1)

    @pytest.mark.parametrize(
        "make, name",
        [
            (lambda: fista(0.1, -0.5), "lam"),
            (lambda: ista(0.1, -0.5), "lam"),
            (lambda: fista(0.1, 0.5, l2=-1.0), "l2"),
            (lambda: ista(0.1, 0.5, l2=float("nan")), "l2"),
            (lambda: prox_l1(-0.1), "threshold"),
            (lambda: prox_elastic_net(0.1, -0.1), "l2_threshold"),
        ],
    )
    def test_negative_penalty(self, make, name):
        with pytest.raises(ValueError, match=rf"^{name} must be >= 0"):
            make()

    def test_restart_must_be_bool(self):
        with pytest.raises(TypeError, match="restart must be a bool"):
            fista(0.1, 0.1, restart="yes")
        with pytest.raises(TypeError, match="restart must be a bool"):
            fista(0.1, 0.1, restart=jnp.array([True, False]))

    def test_schedule_allowed_only_for_eg(self):
        exponentiated_gradient(optax.constant_schedule(0.1))
        with pytest.raises(TypeError, match="learning_rate must be a scalar"):
            fista(optax.constant_schedule(0.1), 0.1)


class TestSimplex:
    @pytest.mark.parametrize(
        "params, match",
        [
            (jnp.array([0.5, 0.6]), r"params must sum to 1 along axis -1.*1\.1"),
            (jnp.array([1.2, -0.2]), r"params must be >= 0.*-0\.2"),
            ({"pi": jnp.array([[0.5, 0.5], [0.3, 0.3]])}, r"params\['pi'\] must sum to 1"),
            (jnp.asarray(1.0), "at least 1 dimension"),
            (jnp.array([0.5, jnp.nan]), "params must be >= 0"),
        ],
    )
    def test_eg_params_off_the_simplex(self, params, match):
        opt = exponentiated_gradient(0.1)
        with pytest.raises(ValueError, match=match):
            opt.init(params)

    def test_eg_integer_params(self):
        with pytest.raises(TypeError, match="params must be a floating-point array"):
            exponentiated_gradient(0.1).init(jnp.array([1, 0]))

    def test_eg_update_without_params(self):
        opt = exponentiated_gradient(0.1)
        state = opt.init(jnp.array([0.5, 0.5]))
        with pytest.raises(ValueError, match="needs params"):
            opt.update(jnp.zeros(2), state)


class TestMasks:
    @pytest.mark.parametrize(
        "mask",
        [{"w": True}, {"w": True, "b": False, "c": True}, [True, False], True],
    )
    @pytest.mark.parametrize("factory", [fista, ista, lambda lr, lam, mask: prox_l1(lam, mask)])
    def test_mismatched_structure(self, factory, mask):
        opt = factory(0.1, 0.1, mask=mask)
        with pytest.raises(ValueError, match=r"mask has tree structure .* but params has"):
            opt.init(PARAMS)

    def test_callable_mask_returning_the_wrong_tree(self):
        opt = fista(0.1, 0.1, mask=lambda p: {"w": True})
        with pytest.raises(ValueError, match="mask has tree structure"):
            opt.init(PARAMS)

    def test_non_bool_leaf(self):
        opt = fista(0.1, 0.1, mask={"w": jnp.array(True), "b": False})
        with pytest.raises(TypeError, match=r"mask\['w'\] must be a Python bool"):
            opt.init(PARAMS)


class TestProjected:
    def test_inner_not_a_transformation(self):
        with pytest.raises(TypeError, match="inner must be an optax.GradientTransformation"):
            projected(optax.projections.projection_simplex, optax.sgd(0.1))

    def test_projection_not_callable(self):
        with pytest.raises(TypeError, match="projection must be a callable"):
            project("simplex")

    def test_projection_changing_the_tree(self):
        opt = project(lambda p: p["w"])
        with pytest.raises(ValueError, match="projection must return the tree structure"):
            opt.update(PARAMS, opt.init(PARAMS), PARAMS)


class TestFistaIterate:
    def test_no_fista_state(self):
        opt = optax.sgd(0.1)
        with pytest.raises(ValueError, match="exactly one FistaState.*found 0"):
            fista_iterate(opt.init(PARAMS))

    def test_two_fista_states(self):
        opt = optax.chain(fista(0.1, 0.1), fista(0.1, 0.1))
        with pytest.raises(ValueError, match="found 2"):
            fista_iterate(opt.init(PARAMS))


class TestClosedForm:
    X = np.ones((5, 2)) * np.arange(5)[:, None] + np.eye(5, 2)
    y = np.arange(5.0)

    @pytest.mark.parametrize("solver", [lstsq, normal_equation, lambda X, y: ridge(X, y, 0.1)])
    def test_column_target(self, solver):
        with pytest.raises(ValueError, match=r"y has shape \(5, 1\) but expected \(5\)"):
            solver(self.X, self.y[:, None])

    @pytest.mark.parametrize("solver", [lstsq, normal_equation])
    def test_one_dimensional_design(self, solver):
        with pytest.raises(ValueError, match="X must have 2 dimension"):
            solver(self.y, self.y)

    def test_non_finite_data(self):
        X = self.X.copy()
        X[2, 1] = np.inf
        with pytest.raises(ValueError, match=r"X must be finite.*index \(2, 1\)"):
            lstsq(X, self.y)

    def test_integer_data(self):
        with pytest.raises(TypeError, match="X must be a floating-point array"):
            lstsq(self.X.astype(int), self.y)

    @pytest.mark.parametrize(
        "lams, match",
        [
            (np.array([0.1, -1.0]), r"lams must be >= 0.*-1\.0"),
            (np.array([[0.1]]), "lams must have 1 dimension"),
            (np.array([np.inf]), "lams must be finite"),
        ],
    )
    def test_bad_lambdas(self, lams, match):
        with pytest.raises(ValueError, match=match):
            ridge_path(self.X, self.y, lams)

    def test_negative_lambda_for_ridge(self):
        with pytest.raises(ValueError, match="lam must be >= 0"):
            ridge(self.X, self.y, -0.5)
