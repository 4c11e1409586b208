"""Bad input to the L1, L2, elastic-net, entropy/MIRAGE++ and logistic derivations: a clear error.

Every error names the argument and what came (shape, dtype or the offending value and its
index); nothing is silently broadcast, clipped or turned into NaN. Shape errors are raised at
trace time, so they also fire under ``jit``; value errors need concrete input (eager call).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import pytest

from gradlab.derivations import elastic_net, entropy, l1, l2, logistic_regression

F64 = jnp.float64


def _lin(n=6, d=3):
    k = jax.random.key(0)
    params = {"w": jnp.linspace(-1.0, 1.0, d), "b": jnp.array(0.5)}
    X = jax.random.normal(k, (n, d), F64)
    return params, X


# ---- the penalties: l1, l2_half, l2_full --------------------------------------------------------

PENALTIES = {
    "l1": (l1.l1, l1.l1_grad),
    "l2_half": (l2.l2_half, l2.l2_half_grad),
    "l2_full": (l2.l2_full, l2.l2_full_grad),
}
PENALTY_FNS = [
    pytest.param(fn, id=f"{name}.{fn.__name__}") for name, pair in PENALTIES.items() for fn in pair
]
W = {"w": jnp.array([1.0, -2.0, 0.5])}


@pytest.mark.parametrize("fn", PENALTY_FNS)
def test_penalty_negative_lam(fn):
    with pytest.raises(ValueError, match=r"lam must be >= 0.*got -0\.5"):
        fn(W, jnp.array(-0.5))


@pytest.mark.parametrize("fn", PENALTY_FNS)
def test_penalty_lam_not_scalar(fn):
    with pytest.raises(
        ValueError, match=re.escape("lam must be a scalar (shape ()); got shape (3,)")
    ):
        fn(W, jnp.ones(3))


@pytest.mark.parametrize("fn", PENALTY_FNS)
def test_penalty_lam_nan(fn):
    with pytest.raises(ValueError, match=r"lam must be finite.*nan"):
        fn(W, jnp.array(jnp.nan))


@pytest.mark.parametrize("fn", PENALTY_FNS)
def test_penalty_lam_integer(fn):
    with pytest.raises(TypeError, match="lam must be a floating-point array; got dtype int"):
        fn(W, jnp.array(1))


@pytest.mark.parametrize("fn", PENALTY_FNS)
def test_penalty_w_column(fn):
    with pytest.raises(
        ValueError, match=re.escape('params["w"] must have 1 dimension(s); got shape (3, 1)')
    ):
        fn({"w": jnp.ones((3, 1))}, jnp.array(0.1))


@pytest.mark.parametrize("fn", PENALTY_FNS)
def test_penalty_w_nan(fn):
    with pytest.raises(
        ValueError, match=re.escape('params["w"] must be finite') + r".*index \(1,\)"
    ):
        fn({"w": jnp.array([1.0, jnp.nan])}, jnp.array(0.1))


@pytest.mark.parametrize("fn", PENALTY_FNS)
def test_penalty_extra_key(fn):
    with pytest.raises(ValueError, match=re.escape("params must have keys ['w']; got ['b', 'w']")):
        fn({"w": jnp.ones(3), "b": jnp.array(0.0)}, jnp.array(0.1))


@pytest.mark.parametrize("fn", PENALTY_FNS)
def test_penalty_params_not_a_dict(fn):
    with pytest.raises(TypeError, match="params must be a dict with keys"):
        fn(jnp.ones(3), jnp.array(0.1))


def test_penalty_shape_error_fires_under_jit():
    with pytest.raises(
        ValueError, match=re.escape("lam must be a scalar (shape ()); got shape (2,)")
    ):
        jax.jit(l2.l2_half_grad)(W, jnp.ones(2))


def test_l1_subdifferential_checks_too():
    with pytest.raises(ValueError, match=r"lam must be >= 0.*got -1\.0"):
        l1.l1_subdifferential(W, jnp.array(-1.0))


def test_l2_hessian_and_hvp_check_too():
    with pytest.raises(ValueError, match=r"lam must be >= 0"):
        l2.l2_full_hessian(W, jnp.array(-1.0))
    with pytest.raises(ValueError, match=r"lam must be >= 0"):
        l2.l2_half_hvp(W, jnp.array(-1.0), W)


# ---- elastic net --------------------------------------------------------------------------------

EN_FNS = [
    pytest.param(f, id=f.__name__)
    for f in (
        elastic_net.elastic_net,
        elastic_net.elastic_net_grad,
        elastic_net.elastic_net_hessian,
        elastic_net.elastic_net_subdifferential,
        elastic_net.mse_term,
        elastic_net.l1_term,
        elastic_net.l2_term_grad,
    )
]
LAM = jnp.array(0.1)


@pytest.mark.parametrize("fn", EN_FNS)
def test_elastic_net_y_column(fn):
    params, X = _lin()
    msg = re.escape("y has shape (6, 1) but expected (6)")
    with pytest.raises(ValueError, match=msg):
        fn(params, X, jnp.zeros((6, 1)), LAM, LAM)


@pytest.mark.parametrize("fn", EN_FNS)
def test_elastic_net_negative_lam1(fn):
    params, X = _lin()
    with pytest.raises(ValueError, match=r"lam1 must be >= 0.*got -0\.1"):
        fn(params, X, jnp.zeros(6), -LAM, LAM)


@pytest.mark.parametrize("fn", EN_FNS)
def test_elastic_net_negative_lam2(fn):
    params, X = _lin()
    with pytest.raises(ValueError, match=r"lam2 must be >= 0.*got -0\.1"):
        fn(params, X, jnp.zeros(6), LAM, -LAM)


def test_elastic_net_nan_in_X():
    params, X = _lin()
    X = X.at[2, 1].set(jnp.nan)
    with pytest.raises(ValueError, match=r"X must be finite.*nan at index \(2, 1\)"):
        elastic_net.elastic_net_grad(params, X, jnp.zeros(6), LAM, LAM)


def test_elastic_net_inf_in_y():
    params, X = _lin()
    y = jnp.zeros(6).at[4].set(jnp.inf)
    with pytest.raises(ValueError, match=r"y must be finite.*inf at index \(4,\)"):
        elastic_net.elastic_net(params, X, y, LAM, LAM)


def test_elastic_net_w_wrong_length():
    params, X = _lin()
    with pytest.raises(ValueError, match=re.escape('params["w"] has shape (2,) but expected (3)')):
        elastic_net.elastic_net({"w": jnp.ones(2), "b": params["b"]}, X, jnp.zeros(6), LAM, LAM)


def test_elastic_net_missing_bias():
    _, X = _lin()
    with pytest.raises(ValueError, match=re.escape("params must have keys ['b', 'w']; got ['w']")):
        elastic_net.elastic_net({"w": jnp.ones(3)}, X, jnp.zeros(6), LAM, LAM)


def test_elastic_net_y_column_under_jit():
    params, X = _lin()
    with pytest.raises(ValueError, match=re.escape("y has shape (6, 1) but expected (6)")):
        jax.jit(elastic_net.elastic_net_grad)(params, X, jnp.zeros((6, 1)), LAM, LAM)


# ---- entropy and MIRAGE++ -----------------------------------------------------------------------

THETA = {"theta": jnp.array([0.2, 0.3, 0.5])}
ENTROPY_FNS = [
    pytest.param(f, id=f.__name__)
    for f in (entropy.entropy, entropy.entropy_grad, entropy.entropy_hessian)
]
MIRAGE_FNS = [
    pytest.param(f, id=f.__name__)
    for f in (
        entropy.mirage,
        entropy.mirage_grad,
        entropy.mirage_hessian,
        entropy.mirage_maxent,
        entropy.mirage_maxent_grad,
        entropy.mse_term,
        entropy.mirage_entropy_term_grad,
    )
]


@pytest.mark.parametrize("fn", ENTROPY_FNS)
def test_entropy_negative_theta(fn):
    msg = re.escape('params["theta"] must be >= 0 everywhere; got -0.1 at index (1,)')
    with pytest.raises(ValueError, match=msg):
        fn({"theta": jnp.array([0.6, -0.1, 0.5])})


@pytest.mark.parametrize("fn", ENTROPY_FNS)
def test_entropy_nan_theta(fn):
    with pytest.raises(ValueError, match=re.escape('params["theta"] must be finite') + ".*nan"):
        fn({"theta": jnp.array([0.5, jnp.nan])})


@pytest.mark.parametrize("fn", ENTROPY_FNS)
def test_entropy_theta_matrix(fn):
    msg = re.escape('params["theta"] must have 1 dimension(s); got shape (3, 1)')
    with pytest.raises(ValueError, match=msg):
        fn({"theta": jnp.ones((3, 1)) / 3})


def test_entropy_wrong_key():
    with pytest.raises(ValueError, match=re.escape("params must have keys ['theta']; got ['w']")):
        entropy.entropy({"w": jnp.ones(3) / 3})


def test_entropy_boundary_is_honest_not_nan():
    """Not an error: theta_i = 0 is in the domain; value finite, gradient +inf (eq. (2))."""
    p = {"theta": jnp.array([0.0, 0.5, 0.5])}
    assert jnp.isfinite(entropy.entropy(p))
    g = entropy.entropy_grad(p)["theta"]
    assert g[0] == jnp.inf and bool(jnp.all(jnp.isfinite(g[1:])))


def test_entropy_negative_theta_under_jit_is_nan_not_silent():
    """Under jit the value check cannot run: the result is NaN, never a plausible number."""
    p = {"theta": jnp.array([0.6, -0.1, 0.5])}
    assert jnp.isnan(jax.jit(entropy.entropy)(p))
    assert jnp.isnan(jax.jit(entropy.entropy_grad)(p)["theta"][1])


def _mirage_data(n=6, d=3):
    X = jax.random.normal(jax.random.key(1), (n, d), F64)
    return X, jnp.zeros(n)


@pytest.mark.parametrize("fn", MIRAGE_FNS)
def test_mirage_y_column(fn):
    X, _ = _mirage_data()
    with pytest.raises(ValueError, match=re.escape("y has shape (6, 1) but expected (6)")):
        fn(THETA, X, jnp.zeros((6, 1)), LAM)


@pytest.mark.parametrize("fn", MIRAGE_FNS)
def test_mirage_theta_length(fn):
    X, y = _mirage_data(d=4)
    msg = re.escape('params["theta"] has shape (3,) but expected (4)')
    with pytest.raises(ValueError, match=msg):
        fn(THETA, X, y, LAM)


@pytest.mark.parametrize("fn", MIRAGE_FNS)
def test_mirage_negative_theta(fn):
    X, y = _mirage_data()
    msg = re.escape('params["theta"] must be >= 0 everywhere; got -0.2 at index (2,)')
    with pytest.raises(ValueError, match=msg):
        fn({"theta": jnp.array([0.6, 0.6, -0.2])}, X, y, LAM)


@pytest.mark.parametrize("fn", MIRAGE_FNS)
def test_mirage_negative_lam(fn):
    """The sign lives in the name (``mirage`` vs ``mirage_maxent``), not in a negative lam."""
    X, y = _mirage_data()
    with pytest.raises(ValueError, match=r"lam must be >= 0.*got -0\.1"):
        fn(THETA, X, y, -LAM)


def test_mirage_nan_in_X():
    X, y = _mirage_data()
    with pytest.raises(ValueError, match=r"X must be finite.*nan at index \(0, 2\)"):
        entropy.mirage_grad(THETA, X.at[0, 2].set(jnp.nan), y, LAM)


def test_mirage_hvp_checks_too():
    X, y = _mirage_data()
    with pytest.raises(ValueError, match=re.escape("y has shape (6, 1) but expected (6)")):
        entropy.mirage_hvp(THETA, X, jnp.zeros((6, 1)), LAM, THETA)


# ---- logistic regression ------------------------------------------------------------------------

LOGISTIC_FNS = [
    pytest.param(f, id=f.__name__)
    for f in (
        logistic_regression.logistic_regression,
        logistic_regression.logistic_regression_grad,
        logistic_regression.logistic_regression_hessian,
    )
]
LABELS = jnp.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])


@pytest.mark.parametrize("fn", LOGISTIC_FNS)
def test_logistic_y_column(fn):
    params, X = _lin()
    with pytest.raises(ValueError, match=re.escape("y has shape (6, 1) but expected (6)")):
        fn(params, X, LABELS[:, None])


@pytest.mark.parametrize("fn", LOGISTIC_FNS)
def test_logistic_labels_not_binary(fn):
    params, X = _lin()
    with pytest.raises(ValueError, match=r"y must hold only 0 and 1; got -1\.0 at index \(2,\)"):
        fn(params, X, LABELS.at[2].set(-1.0))


@pytest.mark.parametrize("fn", LOGISTIC_FNS)
def test_logistic_integer_labels(fn):
    params, X = _lin()
    with pytest.raises(TypeError, match="y must be a floating-point array; got dtype int"):
        fn(params, X, LABELS.astype(jnp.int32))


@pytest.mark.parametrize("fn", LOGISTIC_FNS)
def test_logistic_nan_in_X(fn):
    params, X = _lin()
    with pytest.raises(ValueError, match=r"X must be finite.*nan at index \(5, 0\)"):
        fn(params, X.at[5, 0].set(jnp.nan), LABELS)


@pytest.mark.parametrize("fn", LOGISTIC_FNS)
def test_logistic_nan_label(fn):
    params, X = _lin()
    with pytest.raises(ValueError, match=r"y must be finite.*nan at index \(1,\)"):
        fn(params, X, LABELS.at[1].set(jnp.nan))


def test_logistic_bias_vector():
    params, X = _lin()
    with pytest.raises(ValueError, match=re.escape('params["b"] has shape (1,) but expected ()')):
        logistic_regression.logistic_regression({"w": params["w"], "b": jnp.zeros(1)}, X, LABELS)


def test_logistic_X_vector():
    params, _ = _lin()
    with pytest.raises(ValueError, match=re.escape("X must have 2 dimension(s); got shape (6,)")):
        logistic_regression.logistic_regression_grad(params, jnp.ones(6), LABELS)


def test_logistic_hvp_checks_too():
    params, X = _lin()
    with pytest.raises(ValueError, match=r"y must hold only 0 and 1; got 0\.5"):
        logistic_regression.logistic_regression_hvp(params, X, LABELS.at[0].set(0.5), params)


def test_logistic_extreme_logits_are_finite():
    """Not an error: the softplus form (2) gives a finite loss at |z| = 1e4 (no log 0)."""
    X = jnp.array([[1.0], [1.0]])
    for w in (1e4, -1e4):
        params = {"w": jnp.array([w]), "b": jnp.array(0.0)}
        loss = logistic_regression.logistic_regression(params, X, jnp.array([0.0, 1.0]))
        assert jnp.isfinite(loss) and abs(float(loss) - 1e4 / 2) < 1e-6
        g = logistic_regression.logistic_regression_grad(params, X, jnp.array([0.0, 1.0]))
        assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(g))
