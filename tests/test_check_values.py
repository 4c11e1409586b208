"""check_grad runs the loss's own value checks (issue 12 item 8): a registered derivation's
simplex, positivity, support and finiteness checks raise on invalid inputs, although the
checker only traces the loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import gradlab
from gradlab.derivations import logistic_mixture as lm
from gradlab.derivations import softmax_nll as sm

THETA = {"theta": jnp.array([0.5, 1.0, -0.5])}


def test_softmax_data_outside_the_support_raises_naming_the_check_and_the_entry():
    with pytest.raises(gradlab.InvalidValueError) as info:
        gradlab.check_grad(sm.softmax_nll, sm.softmax_nll_grad, THETA, jnp.array([0, 3, 1]))
    msg = str(info.value)
    assert msg.startswith("check_grad: x must lie in the support [0, 2]")
    assert "got 3 at index (1,)" in msg


def _mixture_args():
    return lm.make_args(jax.random.key(0), lm.SHAPES[0], jnp.float64)


def test_mixture_weights_off_the_simplex_raise():
    params, x, d = _mixture_args()
    bad = {**params, "pi": params["pi"] * 1.5}
    with pytest.raises(
        gradlab.InvalidValueError, match=r"pi\"\] must sum to 1.*got sum\(s\) \[1.5\]"
    ):
        gradlab.check_grad(lm.logistic_mixture_nll, lm.logistic_mixture_nll_grad, bad, x, d)


def test_mixture_data_outside_the_support_raises_in_fast_mode_too():
    params, x, d = _mixture_args()
    bad_x = x.at[2].set(d)
    with pytest.raises(gradlab.InvalidValueError, match=r"x must lie in the support.*index \(2,\)"):
        gradlab.check_grad(
            lm.logistic_mixture_nll, lm.logistic_mixture_nll_grad, params, bad_x, d, mode="fast"
        )


def test_valid_inputs_keep_their_verdict():
    params, x, d = _mixture_args()
    report = gradlab.check_grad(lm.logistic_mixture_nll, lm.logistic_mixture_nll_grad, params, x, d)
    assert report.ok
    ok = gradlab.check_grad(sm.softmax_nll, sm.softmax_nll_grad, THETA, jnp.array([0, 2, 1]))
    assert ok.ok


def test_a_loss_that_cannot_run_eagerly_is_reported_with_the_traced_message():
    from gradlab import _validate

    def loss(params, x):
        if _validate.is_concrete(x):
            raise RuntimeError("this loss only runs traced")
        sm.check_data("x", x, 3)
        return sm.softmax_nll(params, x)

    with pytest.raises(gradlab.InvalidValueError, match=r"^check_grad: x must lie in the support"):
        gradlab.check_grad(loss, sm.softmax_nll_grad, THETA, jnp.array([0, 5]))
