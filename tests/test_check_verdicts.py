"""The verdicts of issue 11, each on a case that the checker before the typed pipeline got wrong:
kinks where several pieces meet, branch bugs next to a kink, blame only for what a term explains,
the referee's own error bar, readable small errors, inputs users pass, gradients as users have
them. Real hand gradients: a two-layer ReLU net, scipy's Rosenbrock derivative, scikit-learn's
Huber loss-and-gradient (reimplemented in numpy), a pinball loss."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradlab import check_grad, check_hessian
from gradlab.check import Finding


def _failing_counts_add_up(report) -> None:
    counted = sum(v.count for v in report.verdicts if v.failing and v.path)
    assert counted == report.n_fail, [str(v) for v in report.verdicts]


# ---- 1. kinks where several pieces meet: the Clarke subdifferential -----------------------------

X_RELU = jnp.asarray([[1.0, 1.0, 0.0], [-2.0, 1.0, 0.0], [0.5, -1.0, 2.0], [1.5, 0.5, -1.0]])
P_RELU = {
    "W1": jnp.asarray([[0.0, 0.0, 1.0], [0.5, -0.25, 0.75]]),  # unit 0 at its kink on x0, x1
    "w2": jnp.asarray([1.0, -0.5]),
}


def relu_net(p, X):
    return jax.nn.relu(X @ p["W1"].T) @ p["w2"]


# residuals +1 and -1 on the two samples at the kink: weight W1[0, 0] enters them with opposite
# signs (x = 1 and x = -2), so along that coordinate the slopes are 0.425 and 0.925, while the
# gradients of the pieces where both units are active (1.425) or neither (-0.075) lie outside
Y_RELU = relu_net(P_RELU, X_RELU) + jnp.asarray([-1.0, 1.0, 0.3, -0.2])


def relu_loss(p, X, y):
    return jnp.mean((relu_net(p, X) - y) ** 2)


def relu_grad(p, X, y, at_zero="active", bump=0.0):
    """Backprop by hand; ``relu'(0)`` is 1 ("active", the limit from where both units are on)
    or 0 ("inactive", jax's convention)."""
    pre = X @ p["W1"].T
    act = (pre >= 0) if at_zero == "active" else (pre > 0)
    h = jnp.where(act, pre, 0.0)
    r = 2 * (h @ p["w2"] - y) / X.shape[0]
    gW1 = ((r[:, None] * act.astype(r.dtype)) * p["w2"][None, :]).T @ X
    return {"W1": gW1.at[0, 0].add(bump), "w2": r @ h}


@pytest.mark.parametrize("at_zero", ["active", "inactive"])
def test_relu_net_with_two_samples_at_one_kink_passes_in_either_convention(at_zero):
    hand = lambda p, X, y: relu_grad(p, X, y, at_zero)
    report = check_grad(relu_loss, hand, P_RELU, X_RELU, Y_RELU)
    assert report.ok, report
    k = next(k for k in report.kinks if k.index == (0, 0))
    assert (k.left, k.right) == pytest.approx((0.925, 0.425), abs=1e-6)
    assert (k.low, k.high) == pytest.approx((-0.075, 1.425), abs=1e-4)  # Clarke, not [l, r]


def test_relu_net_value_outside_every_nearby_gradient_still_fails():
    hand = lambda p, X, y: relu_grad(p, X, y, "active", bump=0.5)  # 1.925 > 1.425
    report = check_grad(relu_loss, hand, P_RELU, X_RELU, Y_RELU)
    assert not report.ok
    assert [(v.kind, v.path, v.count) for v in report.verdicts] == [
        (Finding.KINK_OUTSIDE, "['W1']", 1)
    ]


# ---- 2. a branch bug next to a kink -------------------------------------------------------------

TAU = 0.3


def pinball(w, X, y):
    r = y - X @ w
    return jnp.mean(jnp.maximum(TAU * r, (TAU - 1) * r))


def pinball_grad(w, X, y, wrong_branch=False):
    r = y - X @ w
    d = jnp.where(r < 0, (1 - TAU) if wrong_branch else (TAU - 1), TAU)
    return -(d @ X) / X.shape[0]


@pytest.fixture(scope="module")
def pinball_args():
    rng = np.random.default_rng(3)
    X = jnp.asarray(rng.integers(1, 4, size=(40, 3)).astype(float))  # every x_ij > 0
    w = jnp.asarray([0.5, -0.25, 1.0])
    y = (X @ w + jnp.asarray(rng.normal(size=40))).at[0].set(X[0] @ w)  # residual 0 exactly
    return w, X, y


def test_pinball_correct_subgradient_passes_at_its_kink(pinball_args):
    report = check_grad(pinball, pinball_grad, *pinball_args)
    assert report.ok, report
    assert len(report.kinks) == 3


def test_pinball_branch_bug_next_to_a_kink_is_a_hand_bug_with_counts_that_agree(pinball_args):
    bad = lambda w, X, y: pinball_grad(w, X, y, wrong_branch=True)
    report = check_grad(pinball, bad, *pinball_args)
    assert not report.ok and report.n_fail == 3
    assert [(v.kind, v.count, v.total) for v in report.verdicts] == [
        (Finding.HAND_BUG_AT_KINK, 3, 3)
    ]
    assert "kink" in str(report.verdicts[0])
    _failing_counts_add_up(report)


# ---- 3. blame only what a term explains ---------------------------------------------------------

LAM1, LAM2 = 0.3, 0.35


def _mse(w, X, y):
    return 0.5 * jnp.mean((X @ w - y) ** 2)


def _l1(w, X, y):
    return LAM1 * jnp.sum(jnp.abs(w))


def _l2(w, X, y):
    return LAM2 * jnp.sum(w**2)


TERMS = {"mse": _mse, "l1": _l1, "l2": _l2}


def _enet(w, X, y):
    return _mse(w, X, y) + _l1(w, X, y) + _l2(w, X, y)


def _enet_grad(w, X, y, l2_factor=1.0):
    return (X @ w - y) @ X / X.shape[0] + LAM1 * jnp.sign(w) + l2_factor * 2 * LAM2 * w


@pytest.fixture(scope="module")
def enet_args():
    rng = np.random.default_rng(4)
    X = jnp.asarray(rng.normal(size=(24, 12)))
    y = jnp.asarray(rng.normal(size=24))
    w = jnp.asarray(rng.normal(size=12)).at[jnp.asarray([1, 4])].set(0.0)  # two kinks of l1
    return w, X, y


def test_blame_is_fitted_on_smooth_elements_only(enet_args):
    # hand's sign(0) = 0 differs from jax's abs'(0) = 1 at the kinks: a valid subgradient, which
    # pulled the exact l2 coefficient 1 to 1.33 when the kink elements entered the fit
    report = check_grad(_enet, lambda w, X, y: _enet_grad(w, X, y, 2.0), *enet_args, terms=TERMS)
    top = report.blame[0]
    assert top.term == "l2" and top.coef == pytest.approx(1.0, rel=1e-9)
    assert Finding.BLAME in report.kinds()


@pytest.mark.parametrize("bug", ["one element off by 1e-6", "two elements swapped"])
def test_blame_names_no_term_when_none_explains_the_residual(enet_args, bug):
    def hand(w, X, y):
        g = _enet_grad(w, X, y)
        if bug.startswith("one"):
            return g.at[2].multiply(1 + 1e-6)
        return g[jnp.asarray([0, 1, 3, 2, *range(4, 12)])]

    report = check_grad(_enet, hand, *enet_args, terms=TERMS)
    assert not report.ok and report.blame == ()
    assert report.verdicts[-1].kind is Finding.BLAME_UNEXPLAINED


# ---- 4. the referee decides with the extrapolated value's error bar ----------------------------


def rosen(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosen_der(x):  # scipy.optimize.rosen_der, in numpy
    x = np.asarray(x)
    xm, xm_m1, xm_p1 = x[1:-1], x[:-2], x[2:]
    der = np.zeros_like(x)
    der[1:-1] = 200 * (xm - xm_m1**2) - 400 * (xm_p1 - xm**2) * xm - 2 * (1 - xm)
    der[0] = -400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0])
    der[-1] = 200 * (x[-1] - x[-2] ** 2)
    return der


X_ROSEN = np.array([1.3, 0.7, 0.8, 1.9, 1.2])


def test_rosenbrock_relative_1e6_bug_is_a_hand_bug_not_inconclusive():
    assert check_grad(rosen, rosen_der, X_ROSEN).ok

    def bad(x):
        g = rosen_der(x)
        g[3] *= 1 + 1e-6
        return g

    report = check_grad(rosen, bad, X_ROSEN)
    assert [(v.kind, v.count, v.example.index) for v in report.verdicts] == [
        (Finding.HAND_BUG, 1, (3,))
    ]


# ---- 5. readable at small errors -----------------------------------------------------------------


def test_a_1e6_error_prints_the_digits_that_differ():
    report = check_grad(rosen, lambda x: rosen_der(x) * np.r_[1, 1, 1, 1 + 1e-6, 1], X_ROSEN)
    text = str(report.verdicts[0])
    hand = text.split(": hand ")[1].split(",")[0]
    auto = text.split(", autodiff ")[1].split(" ")[0]
    assert hand != auto and float(hand) != float(auto), text
    assert "hand - autodiff 0.00209" in text
    row = next(line for line in str(report).splitlines() if "[3]" in line).split()
    assert row[row.index("[3]") + 1] != row[row.index("[3]") + 2]  # hand, autodiff columns


def test_a_factor_two_error_reads_as_relative_error_one_half():
    w = jnp.asarray([1.0, -3.0, 0.5])
    report = check_grad(lambda w: jnp.sum(w**2), lambda w: w, w)  # half of 2w
    assert report.leaves[0].max_rel_err == pytest.approx(0.5)


def test_float32_findings_are_said_once_and_the_summary_is_true(capsys=None):
    w = jnp.asarray([1.0, -3.0, 0.5], jnp.float32)
    report = check_grad(lambda w: jnp.sum(w**2), lambda w: w, w)
    text = str(report)
    assert text.count("hand bug:") == 1 and "float64 copy: the same findings" in text
    # float32 passes a 1e-6 bug that the float64 copy catches: the copy does not fail "too"
    quiet = check_grad(lambda w: jnp.sum(w**2), lambda w: 2 * w * (1 + 1e-6), w)
    assert quiet.verdicts[0].kind is Finding.DERIVATION_ERROR
    assert "too" not in str(quiet.verdicts[0]) and "although float32 passes" in str(quiet)


# ---- 6. inputs real users pass -------------------------------------------------------------------


def _mse_w(w, X, y):
    return jnp.mean((X @ w - y) ** 2)


def _mse_w_grad(w, X, y):
    return 2 * ((X @ w - y) @ X) / X.shape[0]


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(5)
    return rng.normal(size=4), rng.normal(size=(20, 4)), rng.normal(size=20)


def test_bfloat16_parameters_are_checked(small):
    w, X, y = (jnp.asarray(a, jnp.bfloat16) for a in small)
    report = check_grad(_mse_w, _mse_w_grad, w, X, y)
    assert report.ok and report.dtype == "bfloat16" and report.float64_copy.ok
    assert not check_grad(_mse_w, lambda *a: 0.5 * _mse_w_grad(*a), w, X, y).ok


def test_typed_prng_key_as_a_non_differentiated_argument(small):
    w, X, y = small
    loss = lambda w, key, X, y: _mse_w(w, X, y) + 0.0 * jax.random.normal(key)
    grad = lambda w, key, X, y: _mse_w_grad(w, X, y)
    for mode in ("full", "fast"):
        assert check_grad(loss, grad, jnp.asarray(w), jax.random.key(0), X, y, mode=mode).ok


def test_eager_numpy_hand_gets_copies_it_may_write_into(small):
    w, X, y = small
    X_before = X.copy()

    def in_place(w, X, y):  # reuses X's buffer, as memory-frugal numpy code does
        X = np.asarray(X)
        r = X @ np.asarray(w) - np.asarray(y)
        X *= r[:, None]
        return 2 * X.sum(axis=0) / X.shape[0]

    assert check_grad(_mse_w, in_place, w, X, y).ok
    np.testing.assert_array_equal(X, X_before)  # the caller's array is untouched
    report = check_grad(_mse_w, in_place, *(jnp.asarray(a) for a in small))  # read-only arrays
    assert report.ok and "eagerly" in report.hand_witness


def test_hessian_paths_are_not_doubled_and_hvp_rows_are_labelled(small):
    w, X, y = (jnp.asarray(a) for a in small)
    H = lambda w, X, y: 2 * X.T @ X / X.shape[0]
    hvp = lambda w, X, y, v: 2 * ((X @ v) @ X) / X.shape[0]
    rep = check_hessian(_mse_w, H, w, X, y)
    assert [leaf.path for leaf in rep.leaves] == ["H[args[0], args[0]]"]
    assert rep.leaves[0].axes == ("row", "column") and rep.kind == "hessian"
    rep = check_hessian(_mse_w, hvp, w, X, y)
    assert [leaf.path for leaf in rep.leaves] == ["Hv[args[0]]"]
    assert rep.leaves[0].axes == ("direction", "element")
    assert "index (direction, element)" in str(rep)


def test_float64_hand_for_float32_parameters_is_reported(small):
    w, X, y = (jnp.asarray(a, jnp.float32) for a in small)
    hand = lambda w, X, y: np.asarray(_mse_w_grad(*(np.asarray(a, np.float64) for a in (w, X, y))))
    report = check_grad(_mse_w, hand, w, X, y)
    assert Finding.HAND_DTYPE in report.kinds()


# ---- 7. gradients as users have them: value_and_grad, named slices of a flat vector -------------

EPS, ALPHA = 1.35, 1e-2


def huber_loss(w, X, y):
    """scikit-learn's HuberRegressor objective, w = [coef, intercept, sigma]."""
    n = X.shape[1]
    coef, intercept, sigma = w[:n], w[n], w[n + 1]
    r = y - X @ coef - intercept
    out = jnp.abs(r) > EPS * sigma
    per = jnp.where(out, 2 * EPS * jnp.abs(r) - sigma * EPS**2, r**2 / sigma)
    return X.shape[0] * sigma + jnp.sum(per) + ALPHA * coef @ coef


def huber_loss_and_gradient(w, X, y, swap=False):
    """sklearn.linear_model._huber._huber_loss_and_gradient (unit sample weights), in numpy."""
    w, X, y = np.asarray(w), np.asarray(X), np.asarray(y)
    n_features = X.shape[1]
    intercept, sigma = (w[-1], w[-2]) if swap else (w[-2], w[-1])
    coef = w[:n_features]
    linear_loss = y - X @ coef - intercept
    outliers_mask = np.abs(linear_loss) > EPS * sigma
    outliers = np.abs(linear_loss[outliers_mask])
    n_out = np.count_nonzero(outliers_mask)
    outlier_loss = 2.0 * EPS * np.sum(outliers) - sigma * n_out * EPS**2
    non_outliers = linear_loss[~outliers_mask]
    squared_loss = non_outliers @ non_outliers / sigma
    grad = np.zeros(n_features + 2)
    grad[:n_features] = (2.0 / sigma) * (non_outliers @ -X[~outliers_mask])
    signed = np.where(linear_loss[outliers_mask] < 0, -1.0, 1.0)
    grad[:n_features] -= 2.0 * EPS * (signed @ X[outliers_mask])
    grad[:n_features] += ALPHA * 2.0 * coef
    grad[-1] = X.shape[0] - n_out * EPS**2 - squared_loss / sigma
    grad[-2] = -2.0 * np.sum(non_outliers) / sigma - 2.0 * EPS * np.sum(signed)
    loss = X.shape[0] * sigma + squared_loss + outlier_loss + ALPHA * coef @ coef
    return loss, grad


@pytest.fixture(scope="module")
def huber_args():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(30, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + rng.standard_t(2, size=30)
    return np.array([0.8, -1.5, 0.4, 0.2, 1.1]), X, y


NAMES = {"coef": slice(0, 3), "intercept": slice(3, 4), "scale": slice(4, 5)}


def test_sklearn_huber_value_and_grad_passes_with_named_slices(huber_args):
    report = check_grad(
        huber_loss, huber_loss_and_gradient, *huber_args, value_and_grad=True, names=NAMES
    )
    assert report.ok, report
    assert [leaf.path for leaf in report.leaves] == ["coef", "intercept", "scale"]
    json.dumps(report.to_dict(), allow_nan=False)


def test_value_and_grad_with_parameters_in_the_wrong_order_shows_in_the_value(huber_args):
    swapped = lambda w, X, y: huber_loss_and_gradient(w, X, y, swap=True)
    report = check_grad(huber_loss, swapped, *huber_args, value_and_grad=True, names=NAMES)
    assert report.verdicts[0].kind is Finding.VALUE_MISMATCH and not report.ok


def test_named_slices_locate_an_error_by_name(huber_args):
    def bad(w, X, y):
        value, g = huber_loss_and_gradient(w, X, y)
        g[2] *= 1.01
        return value, g

    report = check_grad(huber_loss, bad, *huber_args, value_and_grad=True, names=NAMES)
    v = report.verdicts[0]
    assert (v.kind, v.path, v.example.index) == (Finding.HAND_BUG, "coef", (2,))
    assert "coef[2]" in str(v)


def test_names_may_be_an_unravel_function_and_bad_names_are_refused(huber_args):
    unravel = lambda x: {"coef": x[:3], "intercept": x[3], "scale": x[4]}
    report = check_grad(
        huber_loss, huber_loss_and_gradient, *huber_args, value_and_grad=True, names=unravel
    )
    assert [leaf.path for leaf in report.leaves] == ["['coef']", "['intercept']", "['scale']"]
    with pytest.raises(ValueError, match=r"names cover \[0, 3\) but the parameter vector has 5"):
        check_grad(huber_loss, huber_loss_and_gradient, *huber_args, names={"a": slice(0, 3)})


# ---- real gradients from scipy and scikit-learn, as their projects ship them -----------------


def test_scipy_rosen_hess_prod_bug_is_a_hand_bug_on_every_element_refined():
    scipy_opt = pytest.importorskip("scipy.optimize")
    assert check_hessian(rosen, scipy_opt.rosen_hess, X_ROSEN, grad=scipy_opt.rosen_der).ok
    bad = lambda x, p: scipy_opt.rosen_hess_prod(x, p) * np.r_[1, 1, 1 + 1e-7, 1, 1]
    report = check_hessian(rosen, bad, X_ROSEN)  # the plain error bar left one inconclusive
    assert [(v.kind, v.count) for v in report.verdicts] == [(Finding.HAND_BUG, 3)]
    assert "Hv[args[0]] v3 [2]" in str(report.verdicts[0])


def test_sklearn_linear_model_loss_gradient_as_value_and_grad():
    pytest.importorskip("sklearn")
    from sklearn._loss.loss import HalfBinomialLoss
    from sklearn.linear_model._linear_loss import LinearModelLoss

    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(40, 3)), (rng.random(40) < 0.5).astype(float)
    model = LinearModelLoss(base_loss=HalfBinomialLoss(), fit_intercept=True)

    def loss(c, X, y):
        z = X @ c[:3] + c[3]
        return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 0.5 * 0.7 * c[:3] @ c[:3]

    hand = lambda c, X, y: model.loss_gradient(np.asarray(c), X, y, l2_reg_strength=0.7)
    names = {"coef": slice(0, 3), "intercept": slice(3, 4)}
    report = check_grad(loss, hand, rng.normal(size=4), X, y, value_and_grad=True, names=names)
    assert report.ok, report


def test_sklearn_tsne_kl_divergence_gradient_on_a_reshaped_flat_vector():
    pytest.importorskip("sklearn")
    from scipy.spatial.distance import squareform
    from sklearn.manifold._t_sne import _joint_probabilities, _kl_divergence
    from sklearn.metrics import pairwise_distances

    rng = np.random.default_rng(8)
    n, dim = 10, 2
    P = _joint_probabilities(pairwise_distances(rng.normal(size=(n, 5)), squared=True), 4.0, 0)

    def kl(params, P, P_square):
        Y = params.reshape(n, dim)
        num = (1.0 + jnp.sum((Y[:, None, :] - Y[None, :, :]) ** 2, axis=-1)) ** -1.0
        num = num * (1 - jnp.eye(n))
        Q = jnp.maximum(num / jnp.sum(num), np.finfo(float).eps)
        Pm = jnp.maximum(P_square, np.finfo(float).eps)
        return 2.0 * jnp.sum(jnp.triu(P_square * jnp.log(Pm / Q), 1))

    hand = lambda params, P, P_square: _kl_divergence(np.asarray(params), P, 1.0, n, dim)
    unravel = lambda v: {"Y": v.reshape(n, dim)}
    args = (rng.normal(size=n * dim) * 0.1, P, squareform(P))
    report = check_grad(kl, hand, *args, value_and_grad=True, names=unravel)
    assert report.ok, report
    assert report.leaves[0].path == "['Y']" and report.leaves[0].shape == (n, dim)
