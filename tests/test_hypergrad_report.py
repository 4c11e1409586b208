"""The three-witness report: agreement, planted bugs caught and blamed, bad input refused.

Planted bugs (each test also runs the correct version, which must pass): a hand implicit
hypergradient with its cross term transposed; an inner solve stopped early (gradlab's implicit
refuses; a hand formula evaluated there is blamed on the solve); a linear solve stopped early;
a truncated unroll; a lasso evaluated exactly at a support change.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradlab.hypergrad import (
    Finding,
    HypergradRefused,
    InnerProblem,
    Unroll,
    Witness,
    check_hypergrad,
    fit_solver,
    hypergrad_fd,
    implicit,
    unrolled,
)

N, D = 30, 4


@pytest.fixture(scope="module")
def case():
    """L = 1/(2n)||Xw - y||^2 + 1/2 sum_j lam_j (Mw)_j^2 with M not symmetric, so the cross
    term C = d(grad_w L)/d(lam) = M^T diag(Mw) is a non-symmetric square matrix."""
    k = jax.random.split(jax.random.key(7), 4)
    X = jax.random.normal(k[0], (N, D))
    y = X @ jnp.array([1.0, -1.0, 0.5, 2.0]) + 0.3 * jax.random.normal(k[1], (N,))
    M = jnp.eye(D) + 0.6 * jax.random.normal(k[2], (D, D))
    Xv = jax.random.normal(k[3], (N, D))
    yv = Xv @ jnp.array([1.0, -1.0, 0.5, 2.0])

    def loss(w, hp, X, y):
        return 0.5 * jnp.mean((X @ w - y) ** 2) + 0.5 * jnp.sum(hp["lam"] * (M @ w) ** 2)

    def exact(hp):
        H = X.T @ X / N + M.T @ jnp.diag(hp["lam"]) @ M
        return jnp.linalg.solve(H, y @ X / N)

    def val(w):
        return 0.5 * jnp.mean((Xv @ w - yv) ** 2)

    def hand(transposed: bool, solve=exact):
        def hypergrad(hp):  # dV/dlam = -C^T H^-1 grad V
            w = solve(hp)
            H = X.T @ X / N + M.T @ jnp.diag(hp["lam"]) @ M
            C = M.T @ jnp.diag(M @ w)
            v = jnp.linalg.solve(H, jax.grad(val)(w))
            return {"lam": -(C @ v if transposed else C.T @ v)}

        return hypergrad

    prob = InnerProblem(loss, jnp.zeros(D), (X, y))
    hp = {"lam": jnp.array([0.2, 0.5, 0.1, 0.3])}
    referee = hypergrad_fd(val, exact, hp)  # computed once, shared by the audits at hp
    return prob, val, exact, hand, hp, referee


def test_correct_hand_implicit_agrees_and_report_renders(case):
    prob, val, exact, hand, hp, referee = case
    rep = check_hypergrad(prob, val, hp, solve=exact, implicit=hand(False), referee=referee)
    assert rep.ok and rep.findings == (Finding.AGREE,), str(rep)
    d = rep.to_dict()
    assert d["ok"] and d["verdicts"][0]["finding"] == "agree"
    assert [w["witness"] for w in d["witnesses"]] == ["implicit", "finite_differences"]
    assert rep.names == tuple(f"hyperparams['lam'][{i}]" for i in range(D))
    assert "OK" in str(rep) and "hyperparams['lam'][3]" in str(rep)
    assert rep.to_json()  # serializable


def test_transposed_cross_term_is_blamed_on_implicit(case):
    prob, val, exact, hand, hp, referee = case
    rep = check_hypergrad(prob, val, hp, solve=exact, implicit=hand(True), referee=referee)
    assert not rep.ok
    (verdict,) = rep.verdicts
    assert verdict.finding is Finding.IMPLICIT_OFF and verdict.witness is Witness.IMPLICIT
    assert verdict.max_abs_diff > verdict.tolerance
    assert "implicit_off (implicit)" in str(rep)


def test_early_stopped_inner_solve_refused_and_blamed(case):
    prob, val, exact, hand, hp, referee = case
    early = fit_solver(prob, optax.sgd(0.3), 15)  # far from converged
    with pytest.raises(HypergradRefused, match="has not converged") as err:
        implicit(prob, val, hp, solve=early)
    assert err.value.finding is Finding.INNER_NOT_CONVERGED
    assert float(err.value.result.inner_residual) > 1e-4
    # a correct hand formula evaluated at the early-stopped solution: off, blamed on the solve
    # (the referee differentiates the exact solve)
    rep = check_hypergrad(
        prob, val, hp, solve=early, implicit=hand(False, early), fd_solve=exact, referee=referee
    )
    assert rep.findings == (Finding.INNER_NOT_CONVERGED,), str(rep)


def test_linear_solve_stopped_early_is_refused(case):
    prob, val, exact, hand, hp, referee = case
    rep = check_hypergrad(prob, val, hp, solve=exact, maxiter=1, referee=referee)
    assert rep.findings == (Finding.LINEAR_SOLVE_NOT_CONVERGED,), str(rep)
    assert rep.verdicts[0].evidence > 1e-6
    assert rep.witness(Witness.IMPLICIT).value is None  # gradlab's witness refused


def test_truncated_unroll_is_blamed_and_long_unroll_agrees(case):
    prob, val, exact, hand, hp, referee = case
    kw = {"solve": exact, "implicit": hand(False), "referee": referee}
    short = check_hypergrad(prob, val, hp, unroll=Unroll(optax.sgd(0.3), 20), **kw)
    assert short.findings == (Finding.UNROLL_TRUNCATED,), str(short)
    assert short.verdicts[0].witness is Witness.UNROLLED
    long = check_hypergrad(
        prob, val, hp, solve=exact, referee=referee, unroll=Unroll(optax.sgd(0.3), 2000)
    )
    assert long.ok and len(long.witnesses) == 3, str(long)  # all three, gradlab's implicit


def test_lasso_support_change_is_nonsmooth():
    # At lam = lam_max = ||X^T (y - mean y)||_inf / n every weight is zero and one is about to
    # enter the support: the validation loss has a kink in lam there.
    k = jax.random.split(jax.random.key(3), 3)
    X = jax.random.normal(k[0], (N, D))
    y = X @ jnp.array([2.0, 0.0, 0.0, 0.0]) + 0.1 * jax.random.normal(k[1], (N,))
    Xv, yv = X[::-1] * 1.1, y[::-1]
    lam_max = float(jnp.max(jnp.abs((y - jnp.mean(y)) @ X)) / N)
    j = int(jnp.argmax(jnp.abs((y - jnp.mean(y)) @ X)))

    def loss(p, hp, X, y):
        return 0.5 * jnp.mean((X @ p["w"] + p["b"] - y) ** 2)

    def exact(hp):  # the one-coordinate lasso path near lam_max, exact on both sides
        x = X[:, j] - jnp.mean(X[:, j])
        r = (y - jnp.mean(y)) @ x / N
        wj = jnp.sign(r) * jnp.maximum(jnp.abs(r) - hp["lam"], 0.0) / (x @ x / N)
        return {"w": jnp.zeros(D).at[j].set(wj), "b": jnp.mean(y) - jnp.mean(X[:, j]) * wj}

    prob = InnerProblem(
        loss,
        {"w": jnp.zeros(D), "b": jnp.zeros(())},
        (X, y),
        l1=lambda hp: {"w": hp["lam"], "b": 0},
    )

    def val(p):
        return jnp.mean((Xv @ p["w"] + p["b"] - yv) ** 2)

    rep = check_hypergrad(prob, val, {"lam": jnp.asarray(lam_max)}, solve=exact)
    assert rep.findings == (Finding.NONSMOOTH,), str(rep)
    assert rep.witness(Witness.FINITE_DIFFERENCES).kink == (True,)
    assert rep.verdicts[0].evidence > 1e-3  # the slope jump across the support change
    # away from the kink the same problem is smooth and the witnesses agree
    rep = check_hypergrad(prob, val, {"lam": jnp.asarray(0.5 * lam_max)}, solve=exact)
    assert rep.ok, str(rep)


# ---- bad input: clear errors naming the argument -------------------------------------------


def test_python_float_hyperparameter_is_refused(case):
    prob, val, exact, hand, hp, referee = case
    with pytest.raises(TypeError, match=r"hyperparams\['lam'\] must be a floating array leaf"):
        implicit(prob, val, {"lam": 0.5}, solve=exact)


def test_hyperparameter_baked_into_the_trace_is_refused(case):
    prob, val, exact, hand, hp, referee = case
    lam = 0.3  # closed over: the loss ignores hyperparams['lam']

    def loss(w, hp, X, y):
        return 0.5 * jnp.mean((X @ w - y) ** 2) + 0.5 * lam * (w @ w)

    baked = InnerProblem(loss, prob.params0, prob.data)
    with pytest.raises(ValueError, match=r"does not depend on hyperparams\['lam'\]"):
        implicit(baked, val, {"lam": jnp.asarray(0.3)}, solve=exact)
    with pytest.raises(ValueError, match=r"does not depend on hyperparams\['lam'\]"):
        unrolled(baked, val, {"lam": jnp.asarray(0.3)}, optimizer=optax.sgd(0.1), steps=10)
    # a learning rate read from the hyperparameters reaches the loop through the optimizer
    res = unrolled(
        baked, val, {"lr": jnp.asarray(0.1)}, optimizer=lambda hp: optax.sgd(hp["lr"]), steps=10
    )
    assert np.isfinite(float(res.hypergrad["lr"])) and float(res.hypergrad["lr"]) != 0


def test_validation_loss_ignoring_params_is_refused(case):
    prob, val, exact, hand, hp, referee = case
    fitted = exact(hp)
    with pytest.raises(ValueError, match="val .*does not depend on params"):
        implicit(prob, lambda w: val(fitted), hp, solve=exact)


def test_diverging_inner_problem_is_refused(case):
    prob, val, exact, hand, hp, referee = case
    with pytest.raises(HypergradRefused, match="non-finite parameters") as err:
        implicit(prob, val, hp, solve=fit_solver(prob, optax.sgd(50.0), 50))
    assert err.value.finding is Finding.INNER_DIVERGED
    rep = check_hypergrad(
        prob, val, hp, solve=exact, implicit=hand(False), referee=referee,
        unroll=Unroll(optax.sgd(50.0), 50),
    )  # fmt: skip
    assert rep.findings == (Finding.INNER_DIVERGED,), str(rep)
    assert rep.verdicts[0].witness is Witness.UNROLLED
    assert rep.witness(Witness.UNROLLED).refused is Finding.INNER_DIVERGED
