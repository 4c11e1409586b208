"""gradlab.hypergrad against closed forms and exactly solved inner problems (float64).

Ridge: d(val)/d(lambda) from one eigendecomposition; implicit and a long unrolled horizon agree
with it to 1e-8. Per-feature ridge (d hyperparameters) against its closed form. L2 logistic
regression and the lasso on a fixed support: implicit against finite differences of the exactly
solved inner problem (Newton / the support's normal equations).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradlab import optim
from gradlab.hypergrad import (
    InnerProblem,
    default_block,
    fit_solver,
    hypergrad_fd,
    implicit,
    newton_solver,
    unrolled,
)

N, NV, D = 40, 30, 5


@pytest.fixture(scope="module")
def data():
    k = jax.random.split(jax.random.key(18), 5)
    X = jax.random.normal(k[0], (N, D))
    w_true = jnp.array([1.5, -2.0, 0.0, 0.5, 0.0])
    y = X @ w_true + 0.5 * jax.random.normal(k[1], (N,))
    Xv = jax.random.normal(k[2], (NV, D))
    yv = Xv @ w_true + 0.5 * jax.random.normal(k[3], (NV,))
    return X, y, Xv, yv


def ridge_loss(w, hp, X, y):
    """1/(2n) ||Xw - y||^2 + lam/2 ||w||^2 (lam a scalar or one per feature)."""
    return 0.5 * jnp.mean((X @ w - y) ** 2) + 0.5 * jnp.sum(hp["lam"] * w**2)


def ridge_closed_form(X, y, Xv, yv, lams):
    """w(lam) = Q (L + lam)^-1 Q^T c and dw/dlam = -Q (L + lam)^-2 Q^T c, one eigh for all."""
    evals, Q = np.linalg.eigh(np.asarray(X.T @ X) / N)
    qc = Q.T @ (np.asarray(y) @ np.asarray(X)) / N
    out = []
    for lam in lams:
        w = Q @ (qc / (evals + lam))
        dw = -Q @ (qc / (evals + lam) ** 2)
        gval = 2 * ((np.asarray(Xv) @ w - np.asarray(yv)) @ np.asarray(Xv)) / NV
        out.append(gval @ dw)
    return np.array(out)


def mse_val(Xv, yv):
    return lambda w: jnp.mean((Xv @ w - yv) ** 2)


def test_ridge_implicit_and_long_unroll_match_eigendecomposition(data):
    X, y, Xv, yv = data
    lam = 0.3
    want = ridge_closed_form(X, y, Xv, yv, [lam])[0]
    prob = InnerProblem(ridge_loss, jnp.zeros(D), (X, y))

    def solve(hp):  # exact: the normal equations
        return jnp.linalg.solve(X.T @ X / N + hp["lam"] * jnp.eye(D), y @ X / N)

    hp = {"lam": jnp.asarray(lam)}
    res = implicit(prob, mse_val(Xv, yv), hp, solve=solve, rtol=1e-10)
    assert float(res.hypergrad["lam"]) == pytest.approx(want, rel=1e-8, abs=1e-10)
    assert float(res.linear_residual) < 1e-10 and float(res.error_estimate) < 1e-12
    # float32 data: the same answer to a tolerance scaled to float32's epsilon
    f32 = InnerProblem(
        ridge_loss, jnp.zeros(D, jnp.float32), (X.astype(jnp.float32), y.astype(jnp.float32))
    )
    hp32 = {"lam": jnp.asarray(lam, jnp.float32)}

    def solve32(h):  # the float64 solve of the float64 data, returned in float32
        return solve({"lam": h["lam"].astype(X.dtype)}).astype(jnp.float32)

    res32 = implicit(f32, mse_val(Xv.astype(jnp.float32), yv.astype(jnp.float32)), hp32,
                     solve=solve32, rtol=1e-4)  # fmt: skip
    assert res32.hypergrad["lam"].dtype == jnp.float32
    eps32 = float(jnp.finfo(jnp.float32).eps)
    assert float(res32.hypergrad["lam"]) == pytest.approx(want, rel=1e3 * eps32)
    # Unrolled with momentum (its state is carried across the checkpointed blocks), the default
    # block ceil(sqrt(610)) = 25: 24 blocks and a remainder block of 10 steps.
    L = float(jnp.linalg.eigvalsh(X.T @ X / N)[-1]) + lam
    opt = optax.sgd(0.5 / L, momentum=0.5)
    unr = unrolled(prob, mse_val(Xv, yv), hp, optimizer=opt, steps=610)
    assert float(unr.hypergrad["lam"]) == pytest.approx(want, rel=1e-8, abs=1e-10)
    assert float(unr.inner_residual) < 1e-12
    assert default_block(610) == 25 and default_block(100) == 10 and default_block(101) == 11


def test_per_feature_ridge_matches_closed_form(data):
    # d hyperparameters: w = (S + diag lam)^-1 c, dval/dlam_j = -(A^-1 grad val)_j w_j.
    X, y, Xv, yv = data
    lam = jnp.array([0.1, 0.5, 1.0, 0.05, 2.0])
    A = X.T @ X / N + jnp.diag(lam)
    w = jnp.linalg.solve(A, y @ X / N)
    gval = 2 * ((Xv @ w - yv) @ Xv) / NV
    want = -jnp.linalg.solve(A, gval) * w
    prob = InnerProblem(ridge_loss, jnp.zeros(D), (X, y))
    solve = fit_solver(prob, optax.sgd(0.5), 3000)
    res = implicit(prob, mse_val(Xv, yv), {"lam": lam}, solve=solve, rtol=1e-8)
    np.testing.assert_allclose(res.hypergrad["lam"], want, rtol=1e-8, atol=1e-12)
    assert res.hypergrad["lam"].shape == (D,)
    # GMRES solves the same system (at the closed-form optimum)
    exact = lambda hp: jnp.linalg.solve(X.T @ X / N + jnp.diag(hp["lam"]), y @ X / N)  # noqa: E731
    res_g = implicit(prob, mse_val(Xv, yv), {"lam": lam}, solve=exact, linear_solver="gmres")
    np.testing.assert_allclose(res_g.hypergrad["lam"], want, rtol=1e-8, atol=1e-12)


def logistic_loss(p, hp, X, t):
    """Mean logistic loss with labels t in {0, 1} + exp(log_lam)/2 ||w||^2 (bias free)."""
    z = X @ p["w"] + p["b"]
    return jnp.mean(jax.nn.softplus(z) - t * z) + 0.5 * jnp.exp(hp["log_lam"]) * (p["w"] @ p["w"])


def test_logistic_l2_implicit_matches_fd_of_newton_solution(data):
    X, y, Xv, yv = data
    t, tv = (y > 0).astype(X.dtype), (yv > 0).astype(X.dtype)
    prob = InnerProblem(logistic_loss, {"w": jnp.zeros(D), "b": jnp.zeros(())}, (X, t))

    def val(p):
        z = Xv @ p["w"] + p["b"]
        return jnp.mean(jax.nn.softplus(z) - tv * z)

    hp = {"log_lam": jnp.asarray(np.log(0.05))}
    exact = newton_solver(prob, steps=25)
    res = implicit(prob, val, hp, solve=exact, rtol=1e-9)
    fd = hypergrad_fd(val, exact, hp)
    assert float(res.inner_residual) < 1e-13
    assert (
        abs(float(res.hypergrad["log_lam"]) - fd.value[0])
        <= 1e-7 * abs(fd.value[0]) + 3 * (fd.error[0])
    )


@pytest.fixture(scope="module")
def lasso(data):
    """The lasso with an unpenalized bias, its support from FISTA, and an exact fixed-support
    solve: [X_S 1]^T [X_S 1] / n [w_S; b] = [X_S 1]^T y / n - [lam sign_S; 0]."""
    X, y, Xv, yv = data

    def loss(p, hp, X, y):
        return 0.5 * jnp.mean((X @ p["w"] + p["b"] - y) ** 2)

    prob = InnerProblem(
        loss,
        {"w": jnp.zeros(D), "b": jnp.zeros(())},
        (X, y),
        l1=lambda hp: {"w": hp["lam"], "b": 0.0},
    )
    L = float(jnp.linalg.eigvalsh(jnp.c_[X, jnp.ones(N)].T @ jnp.c_[X, jnp.ones(N)] / N)[-1])
    fista = fit_solver(
        prob, lambda hp: optim.fista(1 / L, hp["lam"], mask={"w": True, "b": False}), 3000
    )
    hp = {"lam": jnp.asarray(0.15)}
    w = np.asarray(fista(hp)["w"])
    S = np.flatnonzero(w)
    s = np.sign(w[S])

    def exact(hp):
        Z = jnp.c_[X[:, S], jnp.ones(N)]
        rhs = y @ Z / N - jnp.concatenate([hp["lam"] * s, jnp.zeros(1)])
        sol = jnp.linalg.solve(Z.T @ Z / N, rhs)
        return {"w": jnp.zeros(D).at[S].set(sol[:-1]), "b": sol[-1]}

    def val(p):
        return jnp.mean((Xv @ p["w"] + p["b"] - yv) ** 2)

    return prob, val, hp, fista, exact, S


def test_lasso_implicit_on_fixed_support_matches_fd(lasso):
    prob, val, hp, fista, exact, S = lasso
    assert 0 < len(S) < D  # a genuine support: some coordinates are zero
    fd = hypergrad_fd(val, exact, hp)
    for solve in (exact, fista):
        res = implicit(prob, val, hp, solve=solve, rtol=1e-8)
        assert int(res.support_size) == len(S) + 1 and int(res.tight) == 0
        got = float(res.hypergrad["lam"])
        assert abs(got - fd.value[0]) <= 1e-7 * abs(fd.value[0]) + 3 * fd.error[0], (got, fd)
    assert not fd.kink[0]
