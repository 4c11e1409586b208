"""``gradlab.audit.check_numpy``: check_grad for a loss written with numpy, given as a function."""

from __future__ import annotations

import importlib.util
import textwrap

import numpy as np
import pytest

from gradlab.audit import Verdict, Witnesses, check_numpy

MODULE = textwrap.dedent(
    """
    import numpy as np

    def entropy(theta):
        theta = np.clip(theta, 1e-8, 1.0)
        return -np.sum(theta * np.log(theta))

    def loss(theta, X, y, lam):
        return np.mean((X @ theta - y) ** 2) + lam * entropy(theta)

    def grad(theta, X, y, lam):  # the entropy part doubled
        return 2 * X.T @ (X @ theta - y) / len(y) + 2 * lam * (-1 - np.log(theta))

    def inplace_loss(theta, X, y, lam):
        r = X @ theta - y
        r[0] = 2 * r[0]
        return np.mean(r ** 2) + lam * entropy(theta)

    def inplace_grad(theta, X, y, lam):
        r = X @ theta - y
        r[0] = 4 * r[0]
        return 2 * X.T @ r / len(y) + lam * (-1 - np.log(theta))

    def mse(theta, X, y, lam):
        return np.mean((X @ theta - y) ** 2)

    def ent(theta, X, y, lam):
        return lam * entropy(theta)
    """
)


@pytest.fixture(scope="module")
def mod(tmp_path_factory):
    path = tmp_path_factory.mktemp("numpy_check") / "numpy_derivations.py"
    path.write_text(MODULE)
    spec = importlib.util.spec_from_file_location("numpy_derivations", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def args():
    X = np.cos(np.arange(15.0)).reshape(5, 3)
    return np.array([0.2, 0.3, 0.5]), X, np.arange(5.0), 0.1


def test_numpy_loss_calling_a_helper_is_traced_and_the_wrong_term_blamed(mod, args):
    r = check_numpy(mod.loss, mod.grad, *args, terms={"mse": mod.mse, "ent": mod.ent})
    assert r.verdict is Verdict.WRONG and r.witnesses is Witnesses.THREE
    assert [(b.term, round(b.coef, 9)) for b in r.blame] == [("ent", 1.0)]  # doubled: 2 - 1
    assert any("np -> jax.numpy" in n for n in r.notes)


def test_in_place_loss_is_judged_by_finite_differences_and_its_line_named(mod, args):
    r = check_numpy(mod.inplace_loss, mod.inplace_grad, *args)
    assert r.verdict is Verdict.FD_OK and r.witnesses is Witnesses.FD_ONLY
    assert r.findings == ("inplace_loss (line 16): in-place write `r[0] = 2 * r[0]`",)
    bad = check_numpy(mod.inplace_loss, mod.grad, *args)
    assert bad.verdict is Verdict.FD_WRONG


def test_a_lambda_and_a_dict_of_parameters():
    r = check_numpy(lambda w: np.sum(w**3), lambda w: 3 * w**2, np.arange(3.0))
    assert r.verdict is Verdict.OK
    p = {"a": np.array([1.0, 2.0]), "b": np.array(0.5)}
    r = check_numpy(
        lambda q: np.sum(q["a"] ** 2) * q["b"],
        lambda q: {"a": 2 * q["a"] * q["b"], "b": np.sum(q["a"] ** 2)},
        p,
    )
    assert r.verdict is Verdict.OK and r.witnesses is Witnesses.THREE
