"""Proof on the seeds: the checker on the seeds' own numpy code, as written, and on planted bugs.

Seed 001's ``LinearModel.backward`` is carried as written (weight of shape (p, 1), bias (1,));
the checker never reshapes, so the check runs in the seed's own layout: the parameters are
``{"w": (p, 1), "b": (1,)}`` and the jax loss is the seed's ``Loss.__call__`` on that layout.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradlab import check_grad
from gradlab.check import Finding

# ---- seed 001, as written -----------------------------------------------------------------------


class LinearModel:  # seed 001, verbatim but for comments
    def __init__(self, input_dim, output_dim):
        self.weight = np.random.randn(input_dim, output_dim) * np.sqrt(2.0 / input_dim)  # noqa: NPY002
        self.bias = np.zeros(output_dim)

    def __call__(self, x):
        self.x = x
        return x @ self.weight + self.bias

    def backward(self, loss_grad):
        self.weight_grad = self.x.T @ loss_grad
        self.bias_grad = loss_grad.sum(axis=0)

        if self.l1_lambda is not None:
            self.weight_grad += np.sign(self.weight)

        if self.l2_lambda is not None:
            self.weight_grad += self.l2_lambda * self.weight


L1, L2 = 0.1, 0.05


def seed001_mse(p, X, y):  # Loss.__call__: np.mean((y_true - y_pred)**2)
    return jnp.mean((y - (X @ p["w"] + p["b"].reshape(1, 1))) ** 2)


def seed001_l1(p, X, y):  # self.l1_lambda * np.sum(np.abs(self.model.weight))
    return L1 * jnp.sum(jnp.abs(p["w"]))


def seed001_l2(p, X, y):  # self.l2_lambda * np.sum(np.sum(self.model.weight**2))
    return L2 * jnp.sum(jnp.sum(p["w"] ** 2))


def seed001_loss(p, X, y):
    return seed001_mse(p, X, y) + seed001_l1(p, X, y) + seed001_l2(p, X, y)


def seed001_backward(p, X, y):
    """One pass of the seed's training step: forward, Loss.get_loss_grad, backward."""
    model = LinearModel(X.shape[1], 1)
    model.weight, model.bias = np.array(p["w"]), np.array(p["b"])
    model.l1_lambda, model.l2_lambda = L1, L2  # backward reads them on the model
    y_pred = model(X)
    model.backward(2 / y.shape[0] * (y_pred - y))  # Loss.get_loss_grad
    return {"w": model.weight_grad, "b": model.bias_grad}


@pytest.fixture(scope="module")
def seed001_args():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 6))
    y = X @ rng.normal(size=(6, 1)) + 0.1 * rng.normal(size=(40, 1))
    p = {"w": rng.normal(size=(6, 1)), "b": np.array([0.2])}
    return p, X, y


def test_seed001_backward_as_written_is_flagged_and_blamed_on_l1_and_l2(seed001_args):
    terms = {"mse": seed001_mse, "l1": seed001_l1, "l2": seed001_l2}
    report = check_grad(seed001_loss, seed001_backward, *seed001_args, terms=terms)
    assert not report.ok
    assert "eagerly" in report.hand_witness
    w, b = (next(leaf for leaf in report.leaves if leaf.path == k) for k in ("['w']", "['b']"))
    assert not w.ok and w.n_fail == 6 and b.ok  # the bias gradient is right
    blame = {bl.term: bl for bl in report.blame}
    assert blame["l1"].coef == pytest.approx(1 / L1 - 1, rel=1e-9)  # sign(w) for L1*sign(w)
    assert blame["l2"].coef == pytest.approx(-0.5, rel=1e-9)  # L2*w for 2*L2*w
    assert abs(blame["mse"].coef) < 1e-9
    assert blame["l1"].explained + blame["l2"].explained == pytest.approx(1.0, abs=1e-9)
    assert blame["l2"].explained > 1e-4  # both named, not only the larger
    assert report.verdicts[-1].kind is Finding.BLAME
    assert "term 'l1'" in str(report.verdicts[-1]) and "term 'l2'" in str(report.verdicts[-1])


def test_seed001_with_both_fixes_passes(seed001_args):
    def fixed(p, X, y):
        g = seed001_backward(p, X, y)
        w = np.asarray(p["w"])
        return {"w": g["w"] - np.sign(w) + L1 * np.sign(w) + L2 * w, "b": g["b"]}

    assert check_grad(seed001_loss, fixed, *seed001_args).ok


# ---- seed 000, as written: its gradient matches its own loss -----------------------------------


def seed000_gradient(X, y, theta, lam):  # seed 000, verbatim
    preds = X @ theta
    grad_mse = 2 * X.T @ (preds - y) / len(y)
    grad_entropy = -1 - np.log(np.clip(theta, 1e-8, 1.0))
    return grad_mse + lam * grad_entropy


def seed000_loss(X, y, theta, lam):  # seed 000's entropy and loss, in jax
    t = jnp.clip(theta, 1e-8, 1.0)
    return jnp.mean((X @ theta - y) ** 2) + lam * -jnp.sum(t * jnp.log(t))


def test_seed000_gradient_passes_against_its_own_loss():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 5))
    y = X @ np.array([0.2, 0.1, 0.4, 0.1, 0.2]) + rng.normal(size=100) * 0.1
    theta = rng.dirichlet(np.ones(5))
    report = check_grad(seed000_loss, seed000_gradient, X, y, theta, 0.1, argnums=2)
    assert report.ok, report
    assert "eagerly" in report.hand_witness


# ---- seed 004 plants: softmax NLL sign, mixture mu gradient without 1/s -----------------------


def softmax_nll(theta, data):
    return -jnp.mean(jax.nn.log_softmax(theta)[data])


def softmax_grad(theta, data, sign=1.0):  # numpy: -(1/N) sum (e_x - p) = p - counts / N
    theta, data = np.asarray(theta), np.asarray(data)
    p = np.exp(theta - theta.max())
    p /= p.sum()
    counts = np.bincount(data, minlength=theta.size) / data.size
    return sign * (p - counts)


def test_softmax_nll_wrong_sign_is_caught():
    theta = np.array([0.5, 1.0, -0.5])
    data = np.array([0, 2, 1, 1])
    assert check_grad(softmax_nll, softmax_grad, theta, data).ok
    report = check_grad(softmax_nll, lambda t, x: softmax_grad(t, x, -1.0), theta, data)
    assert not report.ok and report.leaves[0].n_fail == 3
    assert report.verdicts[0].kind is Finding.HAND_BUG


def mixture_nll(p, x):
    def cdf(z):
        return jax.nn.sigmoid(z)

    mu, s, pi = p["mu"][:, None], p["s"][:, None], p["pi"][:, None]
    x = x[None, :].astype(mu.dtype)
    probs = jnp.sum(pi * (cdf((x + 0.5 - mu) / s) - cdf((x - 0.5 - mu) / s)), axis=0)
    return -jnp.mean(jnp.log(probs))


def mixture_grad(p, x, mu_over_s=True):
    """Seed 004's partial derivatives, in numpy (``mu_over_s=False`` drops the 1/s of d/dmu)."""
    mu, s, pi = (np.asarray(p[k])[:, None] for k in ("mu", "s", "pi"))
    x = np.asarray(x, np.float64)[None, :]
    sig = lambda z: 1 / (1 + np.exp(-z))
    a, b = (x + 0.5 - mu) / s, (x - 0.5 - mu) / s
    da, db = sig(a) * (1 - sig(a)), sig(b) * (1 - sig(b))
    px = np.sum(pi * (sig(a) - sig(b)), axis=0)
    n = x.shape[1]
    inv_s = 1 / s if mu_over_s else 1.0
    g_mu = -np.sum(pi * (da - db) * (-inv_s) / px, axis=1) / n
    g_s = -np.sum(pi * (da * (-a / s) - db * (-b / s)) / px, axis=1) / n
    g_pi = -np.sum((sig(a) - sig(b)) / px, axis=1) / n
    return {"mu": g_mu, "s": g_s, "pi": g_pi}


def test_mixture_mu_gradient_missing_one_over_s_is_caught_on_mu_only():
    p = {
        "mu": np.array([3.0, 8.5, 14.0]),
        "s": np.array([1.3, 2.2, 0.8]),
        "pi": np.array([0.3, 0.5, 0.2]),
    }
    x = np.random.default_rng(2).integers(0, 20, size=50)
    assert check_grad(mixture_nll, mixture_grad, p, x).ok
    report = check_grad(mixture_nll, lambda p, x: mixture_grad(p, x, False), p, x)
    assert not report.ok
    assert {leaf.path: leaf.ok for leaf in report.leaves} == {
        "['mu']": False,
        "['pi']": True,
        "['s']": True,
    }


# ---- the (n,) - (n, 1) broadcasting bug in a numpy gradient ----------------------------------


def mse_col(w, X, y_col):  # y given as a column (n, 1), as seed 001's data is
    return jnp.mean((X @ w - y_col[:, 0]) ** 2)


def test_broadcasting_bug_in_numpy_gradient_is_caught():
    rng = np.random.default_rng(3)
    X, w, y_col = rng.normal(size=(30, 4)), rng.normal(size=4), rng.normal(size=(30, 1))

    def good(w, X, y_col):
        return 2 / X.shape[0] * (X.T @ (X @ w - y_col[:, 0]))

    def bug_values(w, X, y_col):  # (n,) - (n, 1) -> (n, n); mean over axis 1 keeps the shape
        r = X @ w - y_col
        return 2 / X.shape[0] * (X.T @ r.mean(axis=1))

    def bug_shape(w, X, y_col):  # the same broadcast surfacing as a (d, n) gradient
        return 2 / X.shape[0] * (X.T @ (X @ w - y_col))

    assert check_grad(mse_col, good, w, X, y_col).ok
    report = check_grad(mse_col, bug_values, w, X, y_col)
    assert not report.ok and report.verdicts[0].kind is Finding.HAND_BUG
    with pytest.raises(
        ValueError, match=r"returned shape \(4, 30\) for args\[0\], which has shape \(4,\)"
    ):
        check_grad(mse_col, bug_shape, w, X, y_col)
