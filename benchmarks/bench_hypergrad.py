"""Hypergradients: implicit vs unrolled (checkpointed and plain) vs finite differences vs jaxopt.

    python benchmarks/bench_hypergrad.py            # full run
    python benchmarks/bench_hypergrad.py --quick    # fewer repeats

All in this one process, warm, median of repeats, float64. Problems:

1. Ridge, n=200 training and 200 validation rows, d=50, feature scales from 1 to 0.05 (the
   Hessian's condition number is about 100 at lambda = 0.01):
   :math:`\\min_w \\tfrac{1}{2n}\\lVert Xw-y\\rVert^2 + \\tfrac{\\lambda}{2}\\lVert w\\rVert^2`,
   V = MSE on validation. Reference: the closed form from one eigendecomposition. The inner
   problem is T steps of gradient descent (step 1/L) through ``gradlab.fit``, T = 100, 1000,
   10000. Per T and method: warm time, compiled temporary memory
   (``memory_analysis().temp_size_in_bytes`` of the jitted hypergradient), |error| against the
   closed form.

   * implicit: ``implicit_at`` at the T-step iterate (IFT, CG on HVPs, two extra solves for the
     error estimate); the note says whether ``gradlab.hypergrad.implicit`` would refuse it;
   * unrolled, blocks of ceil(sqrt T) (``jax.checkpoint``) and plain reverse mode (block = T);
   * finite differences: the 9 inner solves of ``hypergrad_fd``'s two stencils as one jitted
     vmap (``hypergrad_fd`` itself, through ``gradlab.check.finite_differences``, also compiles
     on every call: about 2 s on this machine);
   * jaxopt (if installed): ``jaxopt.implicit_diff.custom_root`` on the same T-step solve, with
     its default linear solve and with CG at tol 1e-12.

2. L2 logistic regression (n=200, d=20), the inner problem solved by Newton's method: gradlab
   implicit vs jaxopt implicit vs finite differences: time and agreement.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from gradlab.hypergrad import (  # noqa: E402
    InnerProblem,
    default_block,
    fit_solver,
    hypergrad_fd,
    implicit_at,
    newton_solver,
)
from gradlab.hypergrad._implicit import ImplicitConfig, refusal  # noqa: E402
from gradlab.hypergrad._unrolled import unrolled_core  # noqa: E402

try:
    from jaxopt import implicit_diff
except ImportError:  # bench-only peer
    implicit_diff = None

N, D, LAM = 200, 50, 0.01
STEPS = (100, 1_000, 10_000)
STENCIL = jnp.asarray([0.0, 1, -1, 0.5, -0.5, 1, -1, 0.5, -0.5]) * 1e-3


def median_time(fn, repeats: int) -> float:
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def temp_bytes(fn, *args) -> int:
    return int(jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes)


def ridge():
    k = jax.random.split(jax.random.key(0), 4)
    scales = jnp.geomspace(1.0, 0.05, D)
    X = jax.random.normal(k[0], (N, D)) * scales
    w = jax.random.normal(k[1], (D,))
    y = X @ w + jax.random.normal(k[2], (N,))
    Xv = jax.random.normal(k[3], (N, D)) * scales
    yv = Xv @ w

    def loss(w, hp, X, y):
        return 0.5 * jnp.mean((X @ w - y) ** 2) + 0.5 * hp * (w @ w)

    def val(w):
        return jnp.mean((Xv @ w - yv) ** 2)

    evals, Q = np.linalg.eigh(np.asarray(X.T @ X) / N)
    qc = Q.T @ np.asarray(y @ X) / N
    w_star = Q @ (qc / (evals + LAM))
    dw = -Q @ (qc / (evals + LAM) ** 2)
    exact = 2 * ((np.asarray(Xv) @ w_star - np.asarray(yv)) @ np.asarray(Xv)) @ dw / N
    L = float(evals[-1]) + LAM
    cond = L / (float(evals[0]) + LAM)
    return InnerProblem(loss, jnp.zeros(D), (X, y)), val, float(exact), L, cond


def row(name, T, fn, args, exact, repeats, note=""):
    """(name, T, warm time, temp bytes, |error|, note) for a hypergradient function ``fn``."""
    f = jax.jit(fn)
    value = float(jnp.ravel(f(*args))[0])
    t = median_time(lambda: f(*args), repeats)
    return name, T, t, temp_bytes(fn, *args), abs(value - exact), note


def ridge_rows(prob, val, exact, L, repeats: int) -> list[tuple]:
    hp = jnp.asarray(LAM)
    opt = optax.sgd(1.0 / L)
    cfg = ImplicitConfig(rtol=1e-8)
    rows = []
    for T in STEPS:
        solve = fit_solver(prob, opt, T)

        def imp(h, solve=solve):
            return implicit_at(prob, val, h, solve(h), rtol=1e-8)

        refused = refusal(jax.jit(imp)(hp), cfg) is not None
        note = "implicit() refuses" if refused else "implicit() answers"
        rows.append(
            row("implicit", T, lambda h, f=imp: f(h).hypergrad, (hp,), exact, repeats, note)
        )
        for block in (default_block(T), T):
            name = "unrolled plain" if block == T else f"unrolled B={block}"

            def unr(h, T=T, block=block):
                return unrolled_core(prob, val, h, opt, T, block).hypergrad

            rows.append(row(name, T, unr, (hp,), exact, repeats))
        fd = hypergrad_fd(val, jax.jit(solve), hp)
        f_fd = jax.vmap(lambda h, s=solve: val(s(h)))
        r = row("finite differences", T, f_fd, (hp + STENCIL,), 0.0, repeats, "9 solves")
        rows.append((*r[:4], abs(float(fd.value[0]) - exact), r[5]))
        if implicit_diff is not None:
            for name, tol in (("jaxopt default", None), ("jaxopt cg 1e-12", 1e-12)):
                jx = jaxopt_hypergrad(prob, val, solve, tol)
                rows.append(row(name, T, jx, (hp,), exact, repeats, "no residual check"))
    return rows


def jaxopt_hypergrad(prob, val, solve, tol=None):
    """jaxopt's implicit differentiation of ``solve``: its optimality condition is grad L = 0;
    ``tol=None`` keeps jaxopt's default linear solve, else CG at ``tol``."""
    from jaxopt import linear_solve

    def optimality(w, hp):
        return jax.grad(prob.loss)(w, hp, *prob.data)

    kw = {} if tol is None else {"solve": lambda mv, b: linear_solve.solve_cg(mv, b, tol=tol)}

    @implicit_diff.custom_root(optimality, **kw)
    def solver(init, hp):
        return solve(hp)

    return jax.grad(lambda h: val(solver(None, h)))


def logistic_rows(repeats: int):
    k = jax.random.split(jax.random.key(1), 4)
    X = jax.random.normal(k[0], (N, 20))
    w = jax.random.normal(k[1], (20,))
    t = (X @ w + jax.random.logistic(k[2], (N,)) > 0).astype(X.dtype)
    Xv = jax.random.normal(k[3], (N, 20))
    tv = (Xv @ w > 0).astype(X.dtype)

    def loss(w, hp, X, t):
        z = X @ w
        return jnp.mean(jax.nn.softplus(z) - t * z) + 0.5 * jnp.exp(hp) * (w @ w)

    def val(w):
        z = Xv @ w
        return jnp.mean(jax.nn.softplus(z) - tv * z)

    prob = InnerProblem(loss, jnp.zeros(20), (X, t))
    hp = jnp.asarray(np.log(0.05))
    solve = newton_solver(prob, 25)
    ref = float(jax.jit(lambda h: implicit_at(prob, val, h, solve(h), rtol=1e-10).hypergrad)(hp))
    rows = [row("implicit (gradlab)", 0, lambda h: implicit_at(prob, val, h, solve(h),
                rtol=1e-10).hypergrad, (hp,), ref, repeats)]  # fmt: skip
    fd = hypergrad_fd(val, jax.jit(solve), hp)
    r = row("finite differences", 0, jax.vmap(lambda h: val(solve(h))), (hp + STENCIL,), 0, repeats)
    rows.append((*r[:4], abs(float(fd.value[0]) - ref), "9 solves"))
    if implicit_diff is not None:
        for name, tol in (("jaxopt default", None), ("jaxopt cg 1e-12", 1e-12)):
            rows.append(row(name, 0, jaxopt_hypergrad(prob, val, solve, tol), (hp,), ref, repeats))
    return rows, ref


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    repeats = 3 if ap.parse_args().quick else 7
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"jax {jax.__version__}, {jax.devices()[0].platform}; jaxopt "
          f"{'installed' if implicit_diff else 'not installed'}")  # fmt: skip
    prob, val, exact, L, cond = ridge()
    print(f"\n1. ridge n={N}, d={D}, lambda={LAM}, cond(H)={cond:.0f}; closed form {exact:.10g}")
    print(f"{'method':<20}{'T':>7}{'time ms':>11}{'temp KiB':>11}{'|error|':>11}  note")
    for name, T, t, mem, err, note in ridge_rows(prob, val, exact, L, repeats):
        print(f"{name:<20}{T:>7}{1e3 * t:>11.3f}{mem / 1024:>11.1f}{err:>11.2e}  {note}")
    rows, ref = logistic_rows(repeats)
    print(f"\n2. L2 logistic regression n={N}, d=20, Newton inner solve; hypergradient {ref:.10g}")
    print(f"{'method':<20}{'time ms':>11}{'temp KiB':>11}{'|diff| vs gradlab':>20}")
    for name, _, t, mem, err, _ in rows:
        print(f"{name:<20}{1e3 * t:>11.3f}{mem / 1024:>11.1f}{err:>20.2e}")


if __name__ == "__main__":
    main()
