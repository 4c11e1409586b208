"""Second order: JAX's derivative of a hand gradient against the loss's Hessian. A hand gradient
behind stop_gradient, or a custom_vjp whose backward JAX cannot differentiate, passes a
first-order check and fails here."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradlab import check_grad, check_grad_of_grad
from gradlab.check import Finding


def loss(w, X):
    return jnp.sum(jnp.log1p(jnp.exp(X @ w))) + 0.5 * jnp.sum(w**2)


def right(w, X):
    return jax.nn.sigmoid(X @ w) @ X + w


@pytest.fixture(scope="module")
def args():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.normal(size=3)), jnp.asarray(rng.normal(size=(5, 3)))


def test_hand_gradient_passes_second_order(args):
    report = check_grad_of_grad(loss, right, *args)
    assert report.ok, report
    assert report.title == "check_grad_of_grad" or report.kind == "own rules"


def test_stop_gradient_passes_first_order_and_fails_second(args):
    hidden = lambda w, X: jax.lax.stop_gradient(right(w, X))  # noqa: E731
    assert check_grad(loss, hidden, *args).ok
    report = check_grad(loss, hidden, *args, order=2)
    assert not report.ok
    (loc,) = report.locations
    assert loc.kind is Finding.HAND_BUG and loc.hand == 0.0
    assert loc.fd == pytest.approx(loc.autodiff, rel=1e-6)  # the Hessian, by differences


def _callback_sigmoid(s):
    return jax.pure_callback(
        lambda v: 1.0 / (1.0 + np.exp(-v)),
        jax.ShapeDtypeStruct(s.shape, s.dtype),
        s,
        vmap_method="sequential",
    )


@jax.custom_vjp
def softplus_sum(s):
    return jnp.sum(jnp.log1p(jnp.exp(s)))


softplus_sum.defvjp(
    lambda s: (softplus_sum(s), s),
    lambda s, g: (g * _callback_sigmoid(s),),  # a backward JAX cannot differentiate
)


def test_custom_vjp_with_non_differentiable_backward_fails_second_order(args):
    def cv_loss(w, X):
        return softplus_sum(X @ w) + 0.5 * jnp.sum(w**2)

    grad = jax.grad(cv_loss)
    assert check_grad(loss, grad, *args).ok  # right in value
    report = check_grad_of_grad(cv_loss, grad, *args)
    assert not report.ok
    assert report.verdicts[0].kind is Finding.RULE_NOT_DIFFERENTIABLE
    assert "pure_callback" in str(report.verdicts[0]).lower() or "jvp" in str(report.verdicts[0])


def test_order_must_be_one_or_two(args):
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        check_grad(loss, right, *args, order=3)


def test_wrong_value_reads_as_value_mismatch(args):
    report = check_grad_of_grad(loss, lambda w, X: 2.0 * right(w, X), *args)
    assert not report.ok
    assert Finding.VALUE_MISMATCH in {v.kind for v in report.verdicts}
