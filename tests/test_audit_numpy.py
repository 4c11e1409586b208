"""``gradlab.audit`` on a script of numpy derivations: every pair shape, the numpy rebinding, the
finite-difference fallback, markers, kinks and each bad input (one audit, shared)."""

from __future__ import annotations

import textwrap

import pytest

from gradlab.audit import Verdict, Witnesses, audit
from gradlab.audit._args import Origin
from gradlab.audit._run import CellStatus

SCRIPT = textwrap.dedent(
    """
    # %%
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = rng.normal(size=20)
    w = np.array([0.0, 0.7, -1.3])
    t = np.sign(y)

    # %%
    while True:
        pass

    # %%
    def ridge_loss(w, X, y, lam=0.3):
        r = X @ w - y
        out = np.zeros(1)
        out[0] = np.mean(r ** 2)
        return out[0] + lam * np.sum(w ** 2)

    def ridge_grad(w, X, y, lam=0.3):
        r = X @ w - y
        return 2 * X.T @ r / len(y) + lam * w

    def ridge2_loss(w, X, y, lam=0.3):
        r = X @ w - y
        out = np.zeros(1)
        out[0] = np.mean(r ** 2)
        return out[0] + lam * np.sum(w ** 2)

    def ridge2_grad(w, X, y, lam=0.3):
        r = X @ w - y
        return 2 * X.T @ r / len(y) + 2 * lam * w

    # %%
    def noisy_loss(w, X, y):
        jitter = 1e-3 * np.random.randn()  # the same draw at every point: numpy is reseeded
        return np.mean((X @ w - y) ** 2) + jitter

    def noisy_grad(w, X, y):
        return 2 * X.T @ (X @ w - y) / len(y)

    # %%
    def cost_and_grad(v, A, rhs):
        r = A @ v - rhs
        cost = 0.5 * np.mean(r ** 2)
        dv = A.T @ r / len(rhs)
        return cost, dv

    # %%
    class LogReg:
        def __init__(self, d):
            self.w = np.zeros(d) + 0.1
            self.b = 0.2

        def loss(self, X, t):
            z = X @ self.w + self.b
            return np.mean(np.log1p(np.exp(-t * z)))

        def grad(self, X, t):
            z = X @ self.w + self.b
            s = -t / (1 + np.exp(t * z)) / len(t)
            return X.T @ s, 2 * np.sum(s)

    clf = LogReg(3)

    # %%
    def vec_loss(w, X, y):
        return (X @ w - y) ** 2

    def vec_grad(w, X, y):
        return 2 * X.T @ (X @ w - y)

    def shape_loss(w, X, y):
        return np.sum((X @ w - y) ** 2)

    def shape_grad(w, X, y):
        return (2 * X.T @ (X @ w - y)).reshape(-1, 1)

    def scaled_loss(w):
        return np.sum(w * undefined_scale)

    def scaled_grad(w):
        return w

    # %%
    # gradlab: grad of missing_loss
    def marked(w):
        return 2 * w

    def l1_penalty(w):
        return np.sum(np.abs(w))

    # gradlab: grad of l1_penalty
    def l1_subgradient(w):
        return np.sign(w)

    # %%
    def propagate(wv, bias, Xc, Yc):  # (grads, cost) with grads a dict of "d"-names
        m = Xc.shape[1]
        A = 1 / (1 + np.exp(-(wv.T @ Xc + bias)))
        cost = -np.sum(Yc * np.log(A) + (1 - Yc) * np.log(1 - A)) / m
        grads = {"dwv": Xc @ (A - Yc).T / m, "dbias": np.sum(A - Yc)}  # BUG: db misses / m
        return grads, cost

    wv, bias = np.array([[0.1], [-0.2]]), 0.3
    Xc, Yc = np.array([[1.0, 2.0, -1.0], [3.0, 4.0, -3.2]]), np.array([[1.0, 0.0, 1.0]])

    def J(theta):
        return theta[0] ** 2 + 3 * theta[1] ** 2

    def dJ(theta):
        return [2 * theta[0], 6 * theta[1]]  # a list of numbers: one gradient array

    theta = np.array([1.0, 2.0])

    # %%
    def softmax_loss_naive(Wm, Xs, ys, reg):  # CS231n style: one loop for loss and gradient
        loss = 0.0
        dW = np.zeros_like(Wm)
        for i in range(Xs.shape[0]):
            s = Xs[i] @ Wm
            s = s - np.max(s)
            p = np.exp(s) / np.sum(np.exp(s))
            loss += -np.log(p[ys[i]])
            for j in range(Wm.shape[1]):
                dW[:, j] += (p[j] - (j == ys[i])) * Xs[i]
        loss = loss / Xs.shape[0] + reg * np.sum(Wm * Wm)
        dW = dW / Xs.shape[0] + reg * Wm  # BUG: 2 * reg * Wm
        return loss, dW

    Wm = np.linspace(-0.3, 0.3, 12).reshape(4, 3)
    Xs = np.cos(np.arange(24.0)).reshape(6, 4)
    ys = np.array([0, 2, 1, 1, 0, 2])
    reg = 0.05

    # %%
    def wide_loss(Wb):
        out = np.zeros(1)
        out[0] = np.sum(np.sin(Wb)) + 0.5 * np.sum(Wb ** 2)
        return out[0]

    def wide_grad(Wb):
        return np.cos(Wb) + 0.5 * Wb  # BUG: + Wb

    Wb = np.linspace(-1.0, 1.0, 600).reshape(30, 20)

    # %%
    from numpy.linalg import norm
    from scipy.special import expit

    def bce_loss(u, X, t):
        q = expit(X @ u)
        return -np.mean(t * np.log(q) + (1 - t) * np.log(1 - q)) + 0.5 * norm(u) ** 2

    def bce_grad(u, X, t):
        return X.T @ (expit(X @ u) - t) / len(t) + u

    u = np.array([0.1, 0.2, -0.3])
    t = (y > 0).astype(float)

    # %%
    def branch_loss(z):  # Python control flow on values: no trace, finite differences only
        return np.sum(z ** 2) if np.all(z > 0) else np.sum(z ** 4)

    def branch_grad(z):
        print("checking", z)
        return 2 * z

    z = np.array([0.5, 1.5])

    # %%
    class TwoLayer:  # parameters in a dict on self, gradients in a dict of the same keys
        def __init__(self, d, h):
            self.params = {"W1": np.cos(np.arange(d * h)).reshape(d, h), "W2": np.ones(h) / h}

        def loss(self, X, y):
            a = np.tanh(X @ self.params["W1"])
            return 0.5 * np.mean((a @ self.params["W2"] - y) ** 2)

        def gradient(self, X, y):
            a = np.tanh(X @ self.params["W1"])
            r = (a @ self.params["W2"] - y) / len(y)
            grads = {}
            grads["W2"] = a.T @ r
            grads["W1"] = X.T @ (np.outer(r, self.params["W2"]) * (1 - a))  # BUG: 1 - a ** 2
            return grads

    net = TwoLayer(3, 4)

    # %%
    def plot_loss(history):
        pass

    def plot_gradient(history):
        pass

    def numerical_gradient(f, x):
        return x

    # %%
    def energy(q, k=2.0):
        return k * np.sum(q ** 4)

    def denergy(q, k=2.0):
        return 4 * k * q ** 3
    """
)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("audit") / "derivations.py"
    path.write_text(SCRIPT)
    return audit(path, timeout=1.0)


def _pair(report, name):
    return next(p for p in report.pairs if p.name == name)


def test_a_never_finishing_cell_times_out_and_the_audit_goes_on(report):
    statuses = [c.status for c in report.run.cells]
    assert statuses.count(CellStatus.TIMEOUT) == 1
    assert statuses.count(CellStatus.OK) == len(statuses) - 1
    assert "per-cell timeout" in report.run.failed()[0].line()


def test_in_place_loss_falls_back_to_finite_differences_and_catches_the_bug(report):
    bad, good = _pair(report, "ridge_grad"), _pair(report, "ridge2_grad")
    assert bad.verdict is Verdict.FD_WRONG and good.verdict is Verdict.FD_OK
    assert not report.ok  # exit 1 territory
    for p in (bad, good):
        assert p.witnesses is Witnesses.FD_ONLY
        assert any("in-place write `out[0] = np.mean(r ** 2)`" in f for f in p.findings)
    assert bad.max_rel_err > 1e-2 and good.max_rel_err < 1e-8
    # blame from finite differences of the pieces: lam * w for 2 lam w
    assert [(b.term, round(b.coef, 6)) for b in bad.blame] == [("lam * np.sum(w ** 2)", -0.5)]


def test_many_elements_on_finite_differences_only_go_along_random_directions(report):
    p = _pair(report, "wide_grad")
    assert p.verdict is Verdict.FD_WRONG and p.witnesses is Witnesses.FD_ONLY
    assert p.report.checked == "8 random directions" and p.report.n_fail == 8


def test_np_random_in_the_loss_is_reported_by_line_and_checked_with_fixed_draws(report):
    p = _pair(report, "noisy_grad")
    assert p.verdict is Verdict.FD_OK
    assert any("np.random" in f and "line" in f for f in p.findings)


def test_loss_and_grad_in_one_function(report):
    p = _pair(report, "cost_and_grad")
    assert p.verdict is Verdict.OK and p.witnesses is Witnesses.THREE
    assert {a.name: a.origin for a in p.args} == {n: Origin.DRAWN for n in ("v", "A", "rhs")}


def test_methods_reading_params_from_self_flag_the_wrong_bias(report):
    p = _pair(report, "LogReg.grad")
    assert p.verdict is Verdict.WRONG  # the bias gradient is doubled
    assert p.worst.startswith("['b']")
    assert p.args[0].origin is Origin.NOTEBOOK  # the notebook's clf


def test_marker_pair_with_kinks_is_judged_by_the_subdifferential(report):
    p = _pair(report, "l1_subgradient")
    assert p.verdict is Verdict.OK and p.kinks == 1  # w[0] = 0: sign(0) = 0 in [-1, 1]
    assert any("marker names 'missing_loss'" in e for e in report.errors)


def test_grads_cost_tuple_with_a_dict_of_d_names_flags_the_bias(report):
    p = _pair(report, "propagate")
    assert p.verdict is Verdict.WRONG and p.worst.startswith("['bias']")
    assert [a.origin for a in p.args] == [Origin.NOTEBOOK] * 4


def test_list_of_numbers_is_one_gradient(report):
    assert _pair(report, "dJ").verdict is Verdict.OK


def test_loss_and_grad_with_in_place_gradient_code_is_sliced_traced_and_blamed(report):
    p = _pair(report, "softmax_loss_naive")
    assert p.verdict is Verdict.WRONG and p.witnesses is Witnesses.THREE
    assert any("without the statements only the gradient needs" in n for n in p.notes)
    assert [(b.term, round(b.coef, 9)) for b in p.blame] == [("reg * np.sum(Wm * Wm)", -0.5)]


def test_functions_imported_by_name_from_numpy_and_scipy_are_rebound(report):
    p = _pair(report, "bce_grad")
    assert p.verdict is Verdict.OK and p.witnesses is Witnesses.THREE
    assert any("expit -> jax.scipy.special.expit" in n for n in p.notes)
    assert any("norm -> jax.numpy.linalg.norm" in n for n in p.notes)


def test_control_flow_on_values_falls_back_to_finite_differences(report):
    p = _pair(report, "branch_grad")
    assert p.verdict is Verdict.FD_OK and p.witnesses is Witnesses.FD_ONLY
    assert any("TracerBoolConversionError" in n for n in p.notes)


def test_a_dict_of_parameters_on_self(report):
    p = _pair(report, "TwoLayer.gradient")
    assert p.verdict is Verdict.WRONG and p.worst.startswith("['W1']")


def test_plotting_and_numerical_helpers_are_not_pairs(report):
    names = {p.name for p in report.pairs}
    assert not names & {"plot_gradient", "numerical_gradient"}


def test_f_df_pair_with_a_default(report):
    p = _pair(report, "denergy")
    assert p.loss == "energy" and p.verdict is Verdict.OK


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vec_grad", "vec_loss returns shape (20,) on these arguments, not a scalar loss"),
        ("shape_grad", "shape (3, 1) but no argument has that shape"),
        ("scaled_grad", "scaled_loss raised NameError: name 'undefined_scale' is not defined"),
    ],
)
def test_bad_pairs_give_one_line_errors_naming_the_function(report, name, expected):
    p = _pair(report, name)
    assert p.verdict is Verdict.ERROR and expected in p.error and "\n" not in p.error


def test_a_gradient_that_never_returns_is_stopped_and_named(tmp_path):
    path = tmp_path / "hang.py"
    path.write_text(
        "import numpy as np\nw = np.ones(3)\n"
        "def loss(w):\n    return np.sum(w ** 2)\n"
        "def grad(w):\n    while True:\n        pass\n"
    )
    (p,) = audit(path, timeout=1.0, pair_timeout=1.0).pairs
    assert (
        p.verdict is Verdict.ERROR
        and p.error == "grad: checking did not finish within 1 s; stopped"
    )
