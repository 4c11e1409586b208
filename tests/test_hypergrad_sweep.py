"""Hypergradients over a sweep grid (one compiled call), refinement from a grid's best cell, and
the memory rule of the checkpointed unroll, on ridge regression with its closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradlab.hypergrad import InnerProblem, refine
from gradlab.hypergrad._unrolled import unrolled_core
from gradlab.sweeps import hypergrad_sweep

N, D = 40, 6


@pytest.fixture(scope="module")
def ridge():
    k = jax.random.split(jax.random.key(5), 4)
    X = jax.random.normal(k[0], (N, D))
    w_true = jnp.array([1.0, -0.5, 0.25, 0.0, 0.0, 2.0])
    y = X @ w_true + 1.0 * jax.random.normal(k[1], (N,))
    Xv = jax.random.normal(k[2], (N, D))
    yv = Xv @ w_true + 1.0 * jax.random.normal(k[3], (N,))

    def loss(w, hp, X, y):
        return 0.5 * jnp.mean((X @ w - y) ** 2) + 0.5 * hp["lam"] * (w @ w)

    def solve(hp):
        return jnp.linalg.solve(X.T @ X / N + hp["lam"] * jnp.eye(D), y @ X / N)

    def val(w):
        return jnp.mean((Xv @ w - yv) ** 2)

    evals, Q = np.linalg.eigh(np.asarray(X.T @ X) / N)
    qc = Q.T @ np.asarray(y @ X) / N

    def closed_form(lam):  # (val, dval/dlam) from one eigendecomposition
        w = Q @ (qc / (evals + lam))
        dw = -Q @ (qc / (evals + lam) ** 2)
        r = np.asarray(Xv) @ w - np.asarray(yv)
        return r @ r / N, 2 * (r @ np.asarray(Xv)) @ dw / N

    return InnerProblem(loss, jnp.zeros(D), (X, y)), val, solve, closed_form


def test_implicit_sweep_is_one_table_against_closed_form(ridge):
    prob, val, solve, closed_form = ridge
    lams = np.logspace(-3, 1, 12)
    res = hypergrad_sweep(prob, val, {"lam": lams}, solve=solve)
    assert len(res) == 12 and {"val", "d_lam", "converged", "inner_residual"} <= set(
        res.column_names
    )
    table = res.table()
    want = np.array([closed_form(lam) for lam in table["lam"]])
    np.testing.assert_allclose(table["val"], want[:, 0], rtol=1e-12)
    np.testing.assert_allclose(table["d_lam"], want[:, 1], rtol=1e-8, atol=1e-12)
    assert table["converged"].all() and not table["diverged"].any()


def test_unrolled_sweep_over_lam_and_learning_rate(ridge):
    # Long horizons: d/dlam tends to the closed form and d/dlr to 0 (the limit does not depend
    # on the step); a learning rate is a hyperparameter through optimizer(hp).
    prob, val, solve, closed_form = ridge
    grid = {"lam": np.array([0.05, 0.5]), "lr": np.array([0.3, 0.5])}
    res = hypergrad_sweep(
        prob, val, grid, method="unrolled", optimizer=lambda hp: optax.sgd(hp["lr"]), steps=600
    )
    table = res.table()
    want = np.array([closed_form(lam)[1] for lam in table["lam"]])
    np.testing.assert_allclose(table["d_lam"], want, rtol=1e-8)
    assert np.all(np.abs(table["d_lr"]) < 1e-10), table["d_lr"]


def test_refine_from_coarse_grid_reaches_the_optimum(ridge):
    prob, val, solve, closed_form = ridge
    coarse = hypergrad_sweep(prob, val, {"lam": np.logspace(-3, 1, 5)}, solve=solve)
    start = coarse.best("val")["lam"]
    out = refine(prob, val, {"lam": jnp.asarray(start)}, solve=solve, steps=30, ftol=1e-14)
    values = [v for v, _ in out.path]
    assert all(b < a for a, b in zip(values, values[1:], strict=False))  # monotone descent
    lam = float(out.hyperparams["lam"])
    fine = np.logspace(-3, 1, 2001)
    fine_best = min(closed_form(x)[0] for x in fine)
    assert out.value <= fine_best + 1e-12
    assert abs(closed_form(lam)[1]) * lam < 1e-7  # stationary in log(lam)
    # one inner solve per trial point: the accepted path plus rejected line-search trials
    assert len(values) <= out.inner_solves < 40, out.inner_solves


def test_checkpointed_unroll_memory_grows_sublinearly(ridge):
    # Compiled temporary memory of the hypergradient at T = 900: blocks of sqrt(T) = 30 steps
    # against plain reverse mode (block = T); the rule of gradlab.hypergrad._unrolled eq. (1).
    # (benchmarks/bench_hypergrad.py: 87.6 KiB against 3926 KiB at T = 10000.)
    prob, val, solve, closed_form = ridge
    hp = {"lam": jnp.asarray(0.1)}

    def compiled(block):
        opt = optax.sgd(0.1, momentum=0.5)
        fn = jax.jit(lambda h: unrolled_core(prob, val, h, opt, 900, block).hypergrad["lam"])
        return fn.lower(hp).compile()

    sqrt_t, plain = compiled(30), compiled(900)
    mem = [c.memory_analysis().temp_size_in_bytes for c in (sqrt_t, plain)]
    assert mem[0] < mem[1] / 4, mem
    # jax.checkpoint changes memory, not values (momentum state carried across blocks)
    assert float(sqrt_t(hp)) == pytest.approx(float(plain(hp)), rel=1e-12)


def test_hypergrad_never_imports_the_sweep_layer():
    # ARCHITECTURE.md: hypergrad/ is above sweep/; the sweep may use hypergrad, not the reverse
    import ast
    import pathlib

    import gradlab.hypergrad

    offenders = []
    for path in pathlib.Path(gradlab.hypergrad.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("gradlab.sweep")]
    assert not offenders, offenders
    assert not hasattr(gradlab.hypergrad, "hypergrad_sweep")
