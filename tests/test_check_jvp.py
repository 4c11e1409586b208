"""check_jvp and check_jacobian: a custom_jvp rule (stable logsumexp) and hand Jacobians against
autodiff of the primal implementation, refereed by finite differences; bad input."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import custom_rules as cr
from gradlab import check_jacobian, check_jvp
from gradlab.check import Finding


@pytest.fixture(scope="module")
def x():
    return jnp.asarray(np.random.default_rng(0).normal(size=(3, 5)) * 3.0)


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_logsumexp_jvp_passes(x, mode):
    lse = cr.make_logsumexp(False)
    report = check_jvp(lse, lse.jvp, x, mode=mode)
    assert report.ok, report
    assert report.fd_agree[0] == report.fd_agree[1] > 0


def test_logsumexp_jvp_float32_passes_beside_float64(x):
    lse = cr.make_logsumexp(False)
    report = check_jvp(lse, lse.jvp, x.astype(jnp.float32))
    assert report.ok, report
    assert report.float64_copy.ok


def test_logsumexp_wrong_sign_named_by_output_input_and_element(x):
    lse = cr.make_logsumexp(True)
    report = check_jvp(lse, lse.jvp, x, mode="fast")
    assert not report.ok
    assert {v.kind for v in report.verdicts} >= {Finding.HAND_BUG, Finding.FAST_RERUN}
    (loc,) = report.locations
    assert (loc.output, loc.input) == ("out", "x")
    assert loc.count == 15 and loc.total == 45  # each row's derivative lies in its own row
    assert loc.output_index == (loc.input_index[0],)
    assert loc.hand == pytest.approx(-loc.autodiff) and loc.fd == pytest.approx(loc.autodiff)


def test_softmax_through_the_rule_is_checked_by_check_jvp(x):
    def jvp(primals, tangents):  # the softmax JVP written by hand, p (t - <p, t>)
        (z,), (t,) = primals, tangents
        p = cr.softmax(z)
        return p, p * (t - jnp.sum(p * t, axis=-1, keepdims=True))

    assert check_jvp(cr.softmax, jvp, x).ok


def test_jvp_primal_out_of_step_is_an_error(x):
    lse = cr.make_logsumexp(False)

    def jvp(primals, tangents):
        y, dy = lse.jvp(primals, tangents)
        return y + 1e-3, dy

    with pytest.raises(ValueError, match=r"out of step with f\(\*args\): at out\[0\]"):
        check_jvp(lse, jvp, x)


def test_jvp_must_return_a_pair_with_f_output_tree(x):
    lse = cr.make_logsumexp(False)
    with pytest.raises(TypeError, match="must return a pair"):
        check_jvp(lse, lambda p, t: lse(p[0]), x)
    with pytest.raises(
        ValueError, match=r"jvp\(\.\.\.\)\[1\] \(the tangent output\) returned shape"
    ):
        check_jvp(lse, lambda p, t: (lse(p[0]), t[0]), x)


def test_jvp_with_a_non_differentiated_integer_argument():
    def f(x, n):
        return x**2 * n

    def jvp(primals, tangents):
        (x, n), (t, _) = primals, tangents
        return f(x, n), 2 * x * n * t

    assert check_jvp(f, jvp, jnp.arange(1.0, 4.0), 3, mode="full").ok


def test_check_jacobian_pytree_and_planted_entry():
    def f(p):
        return {"y": jnp.sin(p["a"]) * p["b"]}

    def jac(p):
        return {"y": {"a": jnp.diag(jnp.cos(p["a"]) * p["b"]), "b": jnp.diag(jnp.sin(p["a"]))}}

    p = {"a": jnp.linspace(0.0, 1.0, 3), "b": jnp.linspace(1.0, 2.0, 3)}
    assert check_jacobian(f, jac, p).ok
    bad = lambda p: {"y": {**jac(p)["y"], "b": jac(p)["y"]["b"].at[2, 1].set(0.1)}}  # noqa: E731
    report = check_jacobian(f, bad, p)
    (loc,) = report.locations
    assert (loc.output, loc.output_index, loc.input, loc.input_index) == (
        "out['y']",
        (2,),
        "p['b']",
        (1,),
    )
    assert loc.autodiff == 0.0 and loc.hand == 0.1


def test_check_jacobian_shape_error_before_compilation():
    with pytest.raises(ValueError, match=r"jac\(\*args\) returned shape \(3,\)"):
        check_jacobian(jnp.sin, lambda x: jnp.cos(x), jnp.ones(3))
