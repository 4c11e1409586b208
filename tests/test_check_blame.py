"""Blame: the residual hand - autodiff fitted on the term gradients names the wrong term and its
factor; terms must sum to the loss; per-term hand gradients are checked each on its own."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from gradlab import check_grad
from gradlab.check._blame import blame

LAM1, LAM2 = 0.3, 0.7


def mse(p, X, y):
    r = X @ p["w"] + p["b"] - y
    return 0.5 * jnp.mean(r**2)


def l1(p, X, y):
    return LAM1 * jnp.sum(jnp.abs(p["w"]))


def l2(p, X, y):
    return 0.5 * LAM2 * jnp.sum(p["w"] ** 2)


def loss(p, X, y):
    return mse(p, X, y) + l1(p, X, y) + l2(p, X, y)


def mse_grad(p, X, y):
    r = X @ p["w"] + p["b"] - y
    return {"w": r @ X / X.shape[0], "b": jnp.mean(r)}


def l1_grad(p, X, y):
    return {"w": LAM1 * jnp.sign(p["w"]), "b": jnp.zeros_like(p["b"])}


def l2_grad(p, X, y, factor=1.0):
    return {"w": factor * LAM2 * p["w"], "b": jnp.zeros_like(p["b"])}


TERMS = {"mse": mse, "l1": l1, "l2": l2}


@pytest.fixture(scope="module")
def args():
    rng = np.random.default_rng(4)
    X = jnp.asarray(rng.normal(size=(24, 6)))
    y = jnp.asarray(rng.normal(size=24))
    p = {"w": jnp.asarray(rng.normal(size=6)), "b": jnp.asarray(-0.2)}
    return p, X, y


def test_least_squares_recovers_coefficients_and_shares():
    g1, g2 = np.array([1.0, 0.0, 1.0]), np.array([0.0, 2.0, 0.0])
    out = {b.term: b for b in blame(3 * g1 - 0.5 * g2, {"a": g1, "b": g2, "zero": 0 * g1})}
    assert out["a"].coef == pytest.approx(3.0) and out["b"].coef == pytest.approx(-0.5)
    assert out["zero"].coef == 0.0 and out["zero"].explained == 0.0
    assert out["a"].explained + out["b"].explained == pytest.approx(1.0)
    assert out["a"].explained == pytest.approx(18 / 19)  # ||3 g1||^2 = 18, ||-0.5 g2||^2 = 1
    assert blame(np.zeros(3), {"a": g1}) == []


def test_l2_term_off_by_two_is_blamed_with_coefficient_one(args):
    hand = lambda p, X, y: {
        k: a + b + c
        for (k, a), b, c in zip(
            mse_grad(p, X, y).items(),
            l1_grad(p, X, y).values(),
            l2_grad(p, X, y, 2.0).values(),
            strict=True,
        )
    }
    report = check_grad(loss, hand, *args, terms=TERMS)
    assert not report.ok
    top = report.blame[0]
    assert top.term == "l2" and top.coef == pytest.approx(1.0, rel=1e-9)
    assert top.explained == pytest.approx(1.0, abs=1e-9)
    assert report.to_dict()["blame"][0] == {
        "term": "l2",
        "coef": top.coef,
        "explained": top.explained,
    }


def test_per_term_hand_gradients_are_checked_each_on_its_own(args):
    term_grads = {"mse": mse_grad, "l1": l1_grad, "l2": lambda p, X, y: l2_grad(p, X, y, 2.0)}
    good_total = lambda p, X, y: {
        k: mse_grad(p, X, y)[k] + l1_grad(p, X, y)[k] + l2_grad(p, X, y)[k] for k in ("w", "b")
    }
    report = check_grad(loss, good_total, *args, terms=TERMS, term_grads=term_grads)
    assert not report.ok  # the total is right, the l2 term's own gradient is not
    assert {name: r.ok for name, r in report.terms.items()} == {
        "mse": True,
        "l1": True,
        "l2": False,
    }
    assert "term 'l2'" in str(report)


def test_terms_that_do_not_sum_to_the_loss_are_refused(args):
    with pytest.raises(ValueError, match="terms must sum to the loss"):
        check_grad(loss, mse_grad, *args, terms={"mse": mse, "l1": l1})
    with pytest.raises(ValueError, match="every term gradient needs its term"):
        check_grad(loss, mse_grad, *args, terms=TERMS, term_grads={"l3": l1_grad})
    with pytest.raises(TypeError, match="terms must map names"):
        check_grad(loss, mse_grad, *args, terms={"mse": 1.0})
