"""check_grad / assert_grad: the three witnesses on pytrees, several arguments, numpy gradients,
float32, fast mode, the report's table and JSON, and bad input."""

from __future__ import annotations

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradlab
from gradlab import GradientMismatch, assert_grad, check_grad
from gradlab.check import Finding


def loss_tree(p, X, y):
    r = X @ p["w"] + p["b"] - y
    return 0.5 * jnp.dot(r, r) + jnp.sum(jnp.tanh(p["w"]) ** 2)


def grad_tree(p, X, y):
    r = X @ p["w"] + p["b"] - y
    t = jnp.tanh(p["w"])
    return {"w": r @ X + 2 * t * (1 - t**2), "b": jnp.sum(r)}


def grad_tree_bug(p, X, y):  # a relative 1e-6 error on one element of w
    g = grad_tree(p, X, y)
    return {"w": g["w"].at[2].multiply(1 + 1e-6), "b": g["b"]}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(12, 5)))
    y = jnp.asarray(rng.normal(size=12))
    p = {"w": jnp.asarray(rng.normal(size=5)), "b": jnp.asarray(0.3)}
    return p, X, y


def test_correct_gradient_passes_with_three_witnesses(data):
    report = check_grad(loss_tree, grad_tree, *data)
    assert report.ok, report
    d = report.to_dict()
    assert {leaf["path"] for leaf in d["leaves"]} == {"['w']", "['b']"}
    for leaf in d["leaves"]:
        assert leaf["max_rel_err"] <= report.rtol
        w = leaf["worst"][0]
        assert abs(w["fd"] - w["autodiff"]) <= 1e-8 * (1 + abs(w["autodiff"]))
    assert "traced" in report.hand_witness


def test_relative_1e6_error_on_one_element_is_caught_and_located(data):
    report = check_grad(loss_tree, grad_tree_bug, *data)
    assert not report.ok
    w = next(leaf for leaf in report.leaves if leaf.path == "['w']")
    b = next(leaf for leaf in report.leaves if leaf.path == "['b']")
    assert not w.ok and b.ok and w.n_fail == 1
    assert w.worst[0].index == (2,)
    assert [(v.kind, v.path, v.count) for v in report.verdicts] == [(Finding.HAND_BUG, "['w']", 1)]
    with pytest.raises(GradientMismatch, match=r"\['w'\]"):
        assert_grad(loss_tree, grad_tree_bug, *data)


def test_assert_grad_reads_like_pytest_one_line_then_the_table(data):
    with pytest.raises(GradientMismatch) as info:
        assert_grad(loss_tree, grad_tree_bug, *data)
    first, rest = str(info.value).split("\n", 1)
    assert re.fullmatch(
        r"\['w'\]: 1 of \d+ elements? differs?, worst \['w'\]\[2\] rel err .*", first
    )
    assert str(info.value.report) in rest
    assert type(info.value).__module__ == "gradlab"
    assert info.typename == "GradientMismatch" and "gradlab.GradientMismatch" in info.exconly()


def test_to_dict_is_json_safe_with_the_issue_keys(data):
    d = check_grad(loss_tree, grad_tree_bug, *data).to_dict()
    json.dumps(d, allow_nan=False)
    assert {"ok", "leaves", "kinks", "nonfinite", "blame"} <= set(d)
    leaf = d["leaves"][0]
    assert {"path", "shape", "ok", "max_abs_err", "max_rel_err", "worst", "n_fail"} <= set(leaf)
    assert {"index", "hand", "autodiff", "fd", "abs_err", "rel_err", "ok"} <= set(leaf["worst"][0])


def test_str_is_a_table_naming_leaf_and_index(data):
    text = str(check_grad(loss_tree, grad_tree_bug, *data))
    assert "MISMATCH" in text and "['w']" in text and "[2]" in text
    assert text.splitlines()[1].split()[:3] == ["leaf", "shape", "ok"]


def test_several_arguments_with_tuple_argnums(data):
    p, X, y = data
    loss = lambda w, b, X, y: loss_tree({"w": w, "b": b}, X, y)

    def grad(w, b, X, y):
        g = grad_tree({"w": w, "b": b}, X, y)
        return g["w"], g["b"]

    report = check_grad(loss, grad, p["w"], p["b"], X, y, argnums=(0, 1))
    assert report.ok, report
    assert [leaf.path for leaf in report.leaves] == ["args[0]", "args[1]"]

    def grad_bug(w, b, X, y):
        gw, gb = grad(w, b, X, y)
        return gw, 2 * gb

    bad = check_grad(loss, grad_bug, p["w"], p["b"], X, y, argnums=(0, 1))
    assert [leaf.ok for leaf in bad.leaves] == [True, False]


def test_argnums_selects_a_later_argument(data):
    p, X, y = data
    # gradient with respect to y: d/dy 0.5||Xw + b - y||^2 = -(Xw + b - y)
    report = check_grad(loss_tree, lambda p, X, y: -(X @ p["w"] + p["b"] - y), p, X, y, argnums=2)
    assert report.ok, report
    assert report.leaves[0].path == "args[2]"


def test_numpy_gradient_is_called_eagerly_and_said_so(data):
    p, X, y = data

    def np_grad(p, X, y):
        X, y = np.asarray(X), np.asarray(y)
        w, b = np.asarray(p["w"]), float(p["b"])
        r = X @ w + b - y
        t = np.tanh(w)
        return {"w": X.T @ r + 2 * t * (1 - t**2), "b": np.sum(r)}

    report = check_grad(loss_tree, np_grad, *data)
    assert report.ok, report
    assert "eagerly" in report.hand_witness and "numpy" in report.hand_witness


def test_float32_is_checked_in_its_dtype_and_as_a_float64_copy(data):
    p, X, y = data
    p32, X32, y32 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), (p, X, y))
    report = check_grad(loss_tree, grad_tree, p32, X32, y32)
    assert report.ok, report
    assert report.dtype == "float32" and report.float64_copy.dtype == "float64"
    assert [d.label.split()[0] for d in report.dtypes] == ["float32", "float64"]
    assert report.rtol == pytest.approx(2**12 * np.finfo(np.float32).eps)
    assert report.fd_agree == (6, 6)  # the float64 referee agrees with float32 values
    # a 1e-6 relative bug is below float32 resolution but the float64 copy catches it
    bad = check_grad(loss_tree, grad_tree_bug, p32, X32, y32)
    assert not bad.ok and not bad.float64_copy.ok
    assert [d.ok for d in bad.dtypes] == [True, False]
    assert bad.verdicts[0].kind is Finding.DERIVATION_ERROR


def test_float32_precision_loss_is_told_apart_from_a_bug():
    # d/dw log(1 + w^2) = 2w / (1 + w^2), with 2w computed as ((w+1)^2 - (w-1)^2) / 2: exact
    # in float64, but for |w| ~ 1e6 the squares (~1e12) lose the 4w in float32 rounding
    loss = lambda w: jnp.sum(jnp.log1p(w**2))
    grad_unstable = lambda w: ((w + 1.0) ** 2 - (w - 1.0) ** 2) / 2 / (1 + w**2)
    w = jnp.asarray([1.1e6, -2.3e6, 0.7e6], jnp.float32)
    report = check_grad(loss, grad_unstable, w)
    assert report.float64_copy.ok
    assert not report.ok and report.verdicts[0].kind is Finding.PRECISION_ONLY


def test_fast_mode_passes_correct_and_localizes_a_bug(data):
    assert check_grad(loss_tree, grad_tree, *data, mode="fast", key=3).ok
    report = check_grad(loss_tree, grad_tree_bug, *data, mode="fast", key=3)
    assert not report.ok
    w = next(leaf for leaf in report.leaves if leaf.path == "['w']")
    b = next(leaf for leaf in report.leaves if leaf.path == "['b']")
    assert b.checked == "4 random directions" and w.checked == "every element"
    assert w.worst[0].index == (2,)
    assert Finding.FAST_RERUN in report.kinds()


def test_fast_mode_key_may_be_a_jax_key(data):
    assert check_grad(loss_tree, grad_tree, *data, mode="fast", key=jax.random.key(7)).ok


def test_l2_factor_two_bug_at_tiny_lambda_is_caught_in_both_modes():
    lam = 1e-5
    w = jnp.asarray(np.random.default_rng(1).normal(size=1000))
    loss = lambda w: 0.5 * jnp.sum((w - 3.0) ** 2) + lam * jnp.sum(w**2)
    good = lambda w: (w - 3.0) + 2 * lam * w
    bug = lambda w: (w - 3.0) + lam * w
    for mode in ("full", "fast"):
        assert check_grad(loss, good, w, mode=mode).ok
        assert not check_grad(loss, bug, w, mode=mode).ok


def test_public_names_are_exported():
    for name in ("check_grad", "assert_grad", "GradientMismatch", "GradReport"):
        assert name in gradlab.__all__ and hasattr(gradlab, name)


# ---- bad input ------------------------------------------------------------------------------


def test_loss_not_scalar_is_a_clear_error(data):
    with pytest.raises(ValueError, match=r"loss\(\*args\) must return a scalar.*shape \(12,\)"):
        check_grad(lambda p, X, y: X @ p["w"] - y, grad_tree, *data)


def test_gradient_with_wrong_tree_is_a_clear_error(data):
    with pytest.raises(ValueError, match="structure"):
        check_grad(loss_tree, lambda p, X, y: grad_tree(p, X, y)["w"], *data)


def test_gradient_with_wrong_shape_names_the_leaf(data):
    def bad(p, X, y):
        g = grad_tree(p, X, y)
        return {"w": g["w"][:, None], "b": g["b"]}

    with pytest.raises(
        ValueError,
        match=r"grad\(\*args\) returned shape \(5, 1\) for args\[0\]\['w'\], which has "
        r"shape \(5,\)",
    ):
        check_grad(loss_tree, bad, *data)


@pytest.mark.parametrize("argnums", [3, -4, (0, 5)])
def test_argnums_out_of_range(data, argnums):
    with pytest.raises(ValueError, match="argnums=.* out of range.*3 positional"):
        check_grad(loss_tree, grad_tree, *data, argnums=argnums)


def test_other_bad_arguments(data):
    with pytest.raises(ValueError, match="mode must be one of"):
        check_grad(loss_tree, grad_tree, *data, mode="slow")
    with pytest.raises(TypeError, match="grad must be callable"):
        check_grad(loss_tree, None, *data)
    with pytest.raises(TypeError, match="argnums must be an int"):
        check_grad(loss_tree, grad_tree, *data, argnums=0.5)
    with pytest.raises(TypeError, match="floating-point"):
        check_grad(lambda n: jnp.sum(n), lambda n: n, jnp.arange(3))
    with pytest.raises(ValueError, match="needs the loss's arguments"):
        check_grad(loss_tree, grad_tree)


# ---- verdicts: which witness is wrong ---------------------------------------------------------


def test_fd_noise_is_told_apart_and_not_a_failure():
    # a ripple far finer than the finite-difference step (1e-3): the differences average it out
    # at both h and h/2 (so their error bar stays small) while hand and autodiff see it
    loss = lambda w: jnp.sum(w**2 + 1e-9 * jnp.sin(1e6 * w))
    hand = lambda w: 2 * w + 1e-3 * jnp.cos(1e6 * w)
    report = check_grad(loss, hand, jnp.asarray([0.5, -1.0, 2.0]))
    assert report.ok
    assert Finding.FD_NOISE in report.kinds(), report.verdicts


def test_autodiff_convention_bug_is_told_apart_from_a_hand_bug():
    @jax.custom_jvp
    def square(x):
        return x**2

    square.defjvp(lambda p, t: (p[0] ** 2, 3 * p[0] * t[0]))  # wrong rule: 3x, not 2x
    report = check_grad(lambda w: jnp.sum(square(w)), lambda w: 2 * w, jnp.asarray([0.5, 2.0]))
    assert not report.ok
    assert report.verdicts[0].kind is Finding.AUTODIFF_DISAGREES, report.verdicts
