"""Kinks and non-finite values: subgradients judged by membership, each witness's convention
named, NaN/inf reported by witness, path and index without a crash."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradlab import check_grad
from gradlab.check import Finding
from gradlab.derivations import elastic_net

W0 = jnp.asarray([0.0, 1.5, -2.0, 0.0])


def abs_loss(w):
    return jnp.sum(jnp.abs(w))


@pytest.mark.parametrize("at_zero", [0.0, 0.3, -1.0, 1.0])
def test_valid_subgradient_of_abs_at_zero_passes(at_zero):
    hand = lambda w: jnp.where(w == 0, at_zero, jnp.sign(w))
    report = check_grad(abs_loss, hand, W0)
    assert report.ok, report
    assert [k.index for k in report.kinks] == [(0,), (3,)]
    k = report.kinks[0]
    assert (k.left, k.right) == pytest.approx((-1.0, 1.0), abs=1e-9)
    assert k.hand_in_subdifferential and k.autodiff == 1.0  # jax: abs'(0) = +1
    conv = {c.witness: c.label for c in k.conventions}
    assert conv["autodiff"] == "right slope" and conv["fd"] == "midpoint"


@pytest.mark.parametrize("at_zero", [1.5, -1.01])
def test_invalid_subgradient_of_abs_at_zero_fails(at_zero):
    hand = lambda w: jnp.where(w == 0, at_zero, jnp.sign(w))
    report = check_grad(abs_loss, hand, W0)
    assert not report.ok
    assert not report.kinks[0].hand_in_subdifferential
    assert [(v.kind, v.path, v.count) for v in report.verdicts] == [
        (Finding.KINK_OUTSIDE, "args[0]", 2)
    ]
    d = report.to_dict()
    assert {
        "path",
        "index",
        "left",
        "right",
        "low",
        "high",
        "hand",
        "autodiff",
        "fd",
        "conventions",
        "hand_in_subdifferential",
    } <= set(d["kinks"][0])


def test_equal_to_autodiff_but_outside_subdifferential_fails():
    # a custom_jvp that declares |x|'(0) = 2: hand copies it, both are outside [-1, 1]
    @jax.custom_jvp
    def bad_abs(x):
        return jnp.abs(x)

    bad_abs.defjvp(lambda p, t: (jnp.abs(p[0]), jnp.where(p[0] == 0, 2.0, jnp.sign(p[0])) * t[0]))
    report = check_grad(
        lambda w: jnp.sum(bad_abs(w)), lambda w: jnp.where(w == 0, 2.0, jnp.sign(w)), W0
    )
    assert not report.ok and not report.kinks[0].hand_in_subdifferential


def test_clip_at_its_bound_is_a_kink_with_jax_convention_named():
    # clip(w, -0.5, 0.5) summed: slopes 1 inside, 0 outside; at w = 0.5 left 1, right 0
    loss = lambda w: jnp.sum(jnp.clip(w, -0.5, 0.5))
    w = jnp.asarray([0.5, 0.1, 2.0])
    hand_left = lambda w: (jnp.abs(w) <= 0.5).astype(w.dtype)  # 1 at the bound: the left slope
    report = check_grad(loss, hand_left, w)
    assert report.ok, report
    (k,) = report.kinks
    assert k.index == (0,) and (k.left, k.right) == pytest.approx((1.0, 0.0), abs=1e-9)
    conv = {c.witness: c.label for c in k.conventions}
    assert conv["hand"] == "left slope" and conv["autodiff"] == "midpoint"  # jax: clip' = 0.5
    assert Finding.KINK_CONVENTION in report.kinds()


def test_elastic_net_at_its_kinks_passes_through_the_registry_record():
    args = elastic_net.kink_args(jax.random.key(0), (16, 3), jnp.float64)
    d = elastic_net.ELASTIC_NET
    report = check_grad(d.loss, d.grad, *args, terms=d.terms, term_grads=d.term_grads)
    assert report.ok, report
    assert {k.index for k in report.kinks} == {(0,), (2,)}


# ---- non-finite ---------------------------------------------------------------------------------


def test_x_log_x_at_zero_reports_hand_inf_without_crash():
    safe = lambda x: jnp.sum(jnp.where(x > 0, x * jnp.log(jnp.where(x > 0, x, 1.0)), 0.0))
    report = check_grad(safe, lambda x: jnp.log(x) + 1.0, jnp.asarray([0.0, 0.5, 2.0]))
    assert not report.ok
    bad = [(n.witness, n.path, n.index, n.value) for n in report.nonfinite]
    assert ("hand", "args[0]", (0,), -np.inf) in bad
    assert Finding.NONFINITE_HAND in report.kinds()
    json.dumps(report.to_dict(), allow_nan=False)  # -inf is written as the string "-inf"
    assert {"witness": "hand", "path": "args[0]", "index": [0], "value": "-inf"} in (
        report.to_dict()["nonfinite"]
    )


def test_nan_loss_is_reported_not_raised():
    unsafe = lambda x: jnp.sum(x * jnp.log(x))  # 0 * log 0 = nan
    report = check_grad(unsafe, lambda x: jnp.log(x) + 1.0, jnp.asarray([0.0, 0.5, 2.0]))
    assert not report.ok
    witnesses = {n.witness for n in report.nonfinite}
    assert {"loss", "autodiff", "fd"} <= witnesses
    assert report.verdicts[0].kind is Finding.LOSS_NONFINITE
    str(report)


def test_where_trap_nan_in_autodiff_only_is_named():
    # the gradient of where(x > 0, sqrt(x), 0) is NaN at x < 0 under autodiff (0 * inf)
    loss = lambda x: jnp.sum(jnp.where(x > 0, jnp.sqrt(x), 0.0))
    hand = lambda x: jnp.where(x > 0, 0.5 / jnp.sqrt(jnp.where(x > 0, x, 1.0)), 0.0)
    report = check_grad(loss, hand, jnp.asarray([-1.0, 4.0]))
    assert [(n.witness, n.index) for n in report.nonfinite] == [("autodiff", (0,))]
    assert not report.ok  # hand finite, autodiff NaN: not certified
