"""check/ inputs and options: no state between calls, tolerances and edge cases refused or
handled (issue 12 items 10-11), one meaning per option name (issue 16)."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradlab import check_grad, check_hessian
from gradlab.check import Finding, finite_differences


def _loss(w, extra):
    return jnp.sum(w**3)


def _grad(w, extra):
    """Traceable (with ``.at``) unless ``extra`` holds the key "numpy"."""
    if "numpy" in extra:
        return 3 * np.asarray(w) ** 2  # np.asarray of a tracer: not traceable
    return (3 * w**2).at[0].add(0.0)


def test_the_same_call_gives_the_same_report_before_and_after_other_calls():
    w = jnp.asarray([0.5, -1.0, 2.0])
    before = check_grad(_loss, _grad, w, {}).to_dict()
    eager = check_grad(_loss, _grad, w, {"numpy": jnp.zeros(())})
    assert eager.ok and "eagerly" in eager.hand_witness
    after = check_grad(_loss, _grad, w, {})  # once raised AttributeError: .at on numpy
    assert after.ok and "traced" in after.hand_witness
    assert after.to_dict() == before


@pytest.mark.parametrize(("name", "value"), [("rtol", -1.0), ("atol", -1e-9), ("rtol", np.nan)])
def test_negative_or_nan_tolerances_are_refused(name, value):
    with pytest.raises(ValueError, match=f"{name} must be finite and >= 0"):
        check_grad(_loss, _grad, jnp.ones(2), {}, **{name: value})


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_zero_size_leaves_are_checked_as_empty(mode, dtype):
    p = {"a": jnp.ones(3, dtype), "e": jnp.zeros((0, 2), dtype)}
    loss = lambda p: jnp.sum(p["a"] ** 2) + jnp.sum(p["e"])
    grad = lambda p: {"a": 2 * p["a"], "e": jnp.ones_like(p["e"])}
    report = check_grad(loss, grad, p, mode=mode)
    assert report.ok, report
    assert [leaf.shape for leaf in report.leaves] == [(3,), (0, 2)]
    only_empty = check_grad(jnp.sum, jnp.ones_like, jnp.zeros(0, dtype), mode=mode)
    assert only_empty.ok and only_empty.leaves[0].shape == (0,)  # once an IndexError


def test_key_is_an_int_or_a_jax_key_in_both_checkers():
    w = jnp.asarray(np.random.default_rng(0).normal(size=6))
    loss = lambda w: jnp.sum(jnp.sin(w) * w)
    grad = lambda w: jnp.cos(w) * w + jnp.sin(w)
    hvp = lambda w, v: (-jnp.sin(w) * w + 2 * jnp.cos(w)) * v
    for key in (3, jax.random.key(3), jax.random.PRNGKey(3)):
        assert check_grad(loss, grad, w, mode="fast", key=key).ok
        assert check_hessian(loss, hvp, w, kind="hvp", max_dense=2, key=key).ok
    with pytest.raises(TypeError, match="key must be None, an int or a jax PRNG key"):
        check_grad(loss, grad, w, key="seed")


def test_directions_has_one_default_across_checkers():
    default = lambda f: inspect.signature(f).parameters["directions"].default
    assert default(check_grad) == default(check_hessian)


def test_fd_memory_budget_is_named_apart_and_the_old_name_warns():
    w = jnp.arange(4.0)
    loss, grad = (lambda w: jnp.sum(w**2)), (lambda w: 2 * w)
    assert check_grad(loss, grad, w, fd_memory_budget=64).ok
    with pytest.warns(DeprecationWarning, match="fd_memory_budget"):
        assert check_grad(loss, grad, w, memory_budget=64).ok
    with pytest.warns(DeprecationWarning, match="fd_memory_budget"):
        finite_differences(loss, w, memory_budget=64)
    with pytest.raises(ValueError, match="fd_memory_budget must be a positive int"):
        check_grad(loss, grad, w, fd_memory_budget=0)


def test_leaf_paths_in_errors_are_not_doubled():
    with pytest.raises(TypeError, match=r"^args\[0\] must be a floating-point array"):
        check_grad(lambda n: jnp.sum(n), lambda n: n, jnp.arange(3))
    with pytest.raises(TypeError, match=r"^args\[0\]\['n'\] must be a floating-point array"):
        check_grad(lambda p: jnp.sum(p["n"]), lambda p: p, {"n": jnp.arange(3)})


def test_a_non_finite_loss_is_not_called_fd_noise():
    report = check_grad(lambda w: jnp.sum(1 / w), lambda w: -1 / w**2, jnp.zeros(2))
    assert report.kinds() == (Finding.LOSS_NONFINITE,)
