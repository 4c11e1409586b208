"""Every registered derivation passes the three-witness checker (gradient, terms, Hessian, HVP),
through the pytest helpers of ``gradlab.testing``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from gradlab.derivations import REGISTRY
from gradlab.testing import assert_grad_close, check_derivation, check_registry


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registered_derivation_passes_the_checker(name):
    d = REGISTRY[name]
    reports = check_derivation(d, key=0)
    for what, report in reports.items():
        assert report.ok, f"{name} {what}:\n{report}"
    if d.terms:
        assert set(reports["grad"].terms) == set(d.term_grads or ())
    if d.hessian is not None:
        assert "hessian" in reports


def test_assert_grad_close_fixture_and_strict_dtypes(grad_checker, strict_dtypes):
    w = jnp.asarray([0.5, -1.5, 2.0])
    report = grad_checker(
        lambda w: jnp.sum(jnp.sin(w) * w), lambda w: jnp.cos(w) * w + jnp.sin(w), w
    )
    assert report.ok
    with pytest.raises(AssertionError, match="MISMATCH"):
        assert_grad_close(lambda w: jnp.sum(jnp.sin(w) * w), lambda w: jnp.cos(w) * w, w)


def test_check_registry_subset_in_float32_checks_a_float64_copy():
    out = check_registry(names=["mse_mean"], dtype=jnp.float32, hessian=False)
    report = out["mse_mean"]["grad"]
    assert report.ok, report
    assert report.dtype == "float32" and report.float64_copy is not None
    with pytest.raises(KeyError):
        check_registry(names=["no_such_derivation"])
    assert jax.config.jax_enable_x64
