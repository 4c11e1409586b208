"""check_hessian: hand Hessians and HVPs against jax.hessian / forward-over-reverse and against
differences of the hand gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradlab import check_hessian
from gradlab.check import Finding
from gradlab.derivations import mse


@pytest.fixture(scope="module")
def args():
    rng = np.random.default_rng(0)
    p = {"w": jnp.asarray(rng.normal(size=3)), "b": jnp.asarray(0.4)}
    return p, jnp.asarray(rng.normal(size=(16, 3))), jnp.asarray(rng.normal(size=16))


def test_mse_hand_hessian_and_hvp_pass(args):
    for hess in (mse.mse_mean_hessian, mse.mse_mean_hvp):
        report = check_hessian(mse.mse_mean, hess, *args, grad=mse.mse_mean_grad)
        assert report.ok, report
        assert report.title == "check_hessian"
    assert "hvp" in report.mode and "hand gradient" in report.mode


def test_wrong_block_of_hand_hessian_is_located(args):
    def bad(p, X, y):
        H = mse.mse_mean_hessian(p, X, y)
        return {"w": {"w": H["w"]["w"].at[1, 2].add(1e-7), "b": H["w"]["b"]}, "b": H["b"]}

    report = check_hessian(mse.mse_mean, bad, *args, grad=mse.mse_mean_grad)
    assert not report.ok
    failing = [leaf for leaf in report.leaves if not leaf.ok]
    assert [leaf.path for leaf in failing] == ["H[['w'], ['w']]"]
    assert failing[0].worst[0].index == (1, 2)
    assert report.verdicts[0].kind is Finding.HAND_BUG
    assert "differences of the hand gradient" in str(report.verdicts[0])


def test_hvp_with_a_factor_bug_fails_on_random_directions_above_max_dense(args):
    bad = lambda p, X, y, t: jax.tree.map(lambda a: 2 * a, mse.mse_mean_hvp(p, X, y, t))
    report = check_hessian(mse.mse_mean, bad, *args, kind="hvp", max_dense=2, directions=3)
    assert not report.ok and "3 random directions" in report.mode


def test_numpy_hessian_is_called_eagerly(args):
    def np_hessian(p, X, y):
        X = np.asarray(X)
        c = 2.0 / X.shape[0]
        col = c * X.sum(axis=0)
        return {"w": {"w": c * X.T @ X, "b": col}, "b": {"w": col, "b": c * X.shape[0]}}

    report = check_hessian(mse.mse_mean, np_hessian, *args)
    assert report.ok, report
    assert "eagerly" in report.hand_witness


def test_hessian_block_with_wrong_shape_is_a_clear_error(args):
    def bad(p, X, y):
        H = mse.mse_mean_hessian(p, X, y)
        return {"w": {"w": H["w"]["w"], "b": H["w"]["b"][:, None]}, "b": H["b"]}

    with pytest.raises(ValueError, match=r"block H\[\['w'\], \['b'\]\] has shape \(3, 1\).*\(3,\)"):
        check_hessian(mse.mse_mean, bad, *args)
    with pytest.raises(ValueError, match="kind must be one of"):
        check_hessian(mse.mse_mean, mse.mse_mean_hessian, *args, kind="jacobian")
