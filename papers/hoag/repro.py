r"""Pedregosa (2016), "Hyperparameter optimization with approximate gradient" (HOAG), on
L2-regularized logistic regression: the hypergradient's error is linear in the inner solve's
tolerance, and hypergradient descent with decreasing tolerances reaches the exact method's
hyperparameter for a fraction of the inner iterations.

Command (writes ``papers/hoag/hoag.png`` and prints the claim's numbers)::

    python papers/hoag/repro.py            # 60 outer iterations, about 10 s of CPU
    python papers/hoag/repro.py --quick    # 40 outer iterations, the test's size, about 10 s

The problem (``note.md`` eq. (1)): logistic loss on n = 200 training rows of d = 20 correlated
features, penalty :math:`\tfrac{e^{\lambda}}{2}\lVert w\rVert^2` with :math:`\lambda` the log
of the L2 strength (the bias unpenalized), validation loss the logistic loss on 200 held-out
rows. The hypergradient is ``gradlab.hypergrad.implicit_at`` (the implicit function theorem, CG
on Hessian-vector products) at the inner iterate it is given; inner solves are gradient descent
with step :math:`1/L` until :math:`\lVert\nabla_\theta L\rVert \le \varepsilon`, warm-started.

What it prints (the seed is fixed; quick and full agree):

* hypergradient error against the inner residual over eight decades: log-log slope 1.01 (note
  eq. (4): the error is :math:`O(\varepsilon)`); gradlab's one-Newton-step error estimate (the
  number ``gradlab.hypergrad.implicit`` refuses on) is 0.96-1.00 times the true error;
* HOAG (:math:`\varepsilon_k = \max(0.1 \cdot 0.5^k, 10^{-10})`) and exact hypergradient descent
  (:math:`\varepsilon = 10^{-10}` at every outer step) end at the same :math:`\lambda`
  (-2.283404, to 1e-8) and validation loss, HOAG with 146 inner gradient iterations against
  1315 (9.0x fewer; full: 147 against 1316).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from gradlab.hypergrad import InnerProblem, implicit, implicit_at, newton_solver
from gradlab.plot import pyplot, save_figure

jax.config.update("jax_enable_x64", True)

HERE = Path(__file__).resolve().parent
N, D = 200, 20
EPS_GRID = np.geomspace(1e-2, 1e-10, 9)  # inner tolerances of the error study
LOG_LAM_STUDY = np.log(0.01)  # where the error study runs
LOG_LAM0 = np.log(1.0)  # HOAG's starting point (over-regularized)
STEP = 40.0  # outer step in log-lambda (about 2/3 of 1/curvature at the optimum)
MAX_INNER = 50_000
EPS_EXACT = 1e-10  # the exact method's inner tolerance, HOAG's floor


def make_problem(seed: int = 0):
    """Training/validation data (note section 3) -> (problem, val, L_x)."""
    rng = np.random.default_rng(seed)
    C = 0.5 ** np.abs(np.subtract.outer(np.arange(D), np.arange(D)))  # AR(1) correlation
    Xall = rng.multivariate_normal(np.zeros(D), C, 2 * N)
    w_true = rng.normal(0, 1, D) * (rng.random(D) < 0.5)
    t_all = (Xall @ w_true + rng.logistic(0, 1, 2 * N) > 0).astype(float)
    X, t, Xv, tv = (jnp.asarray(a) for a in (Xall[:N], t_all[:N], Xall[N:], t_all[N:]))

    def loss(p, hp, X, t):  # note eq. (1)
        z = X @ p["w"] + p["b"]
        return jnp.mean(jax.nn.softplus(z) - t * z) + 0.5 * jnp.exp(hp) * (p["w"] @ p["w"])

    def val(p):
        z = Xv @ p["w"] + p["b"]
        return jnp.mean(jax.nn.softplus(z) - tv * z)

    X1 = jnp.c_[X, jnp.ones(N)]
    L_x = float(jnp.linalg.eigvalsh(X1.T @ X1 / N)[-1]) / 4  # curvature bound of the data term
    prob = InnerProblem(loss, {"w": jnp.zeros(D), "b": jnp.zeros(())}, (X, t))
    return prob, val, L_x


def make_inner(prob: InnerProblem, L_x: float):
    """Gradient descent, step 1/L, from ``theta`` until ||grad|| <= eps: (theta, iterations)."""
    theta0, unravel = ravel_pytree(prob.params0)

    def grad(theta, hp):
        return ravel_pytree(jax.grad(prob.loss)(unravel(theta), hp, *prob.data))[0]

    @jax.jit
    def inner(theta, hp, eps):
        step = 1.0 / (L_x + jnp.exp(hp))

        def cond(s):
            return (jnp.linalg.norm(s[1]) > eps) & (s[2] < MAX_INNER)

        def body(s):
            t = s[0] - step * s[1]
            return t, grad(t, hp), s[2] + 1

        t, _, k = lax.while_loop(cond, body, (theta, grad(theta, hp), jnp.int32(0)))
        return t, k

    return inner, theta0, unravel


def error_study(prob, val, inner, theta0, unravel):
    """Hypergradient error vs the inner residual at fixed lambda (note eq. (4))."""
    hp = jnp.asarray(LOG_LAM_STUDY)
    exact = implicit(prob, val, hp, solve=newton_solver(prob, 30), rtol=1e-10)
    at = jax.jit(lambda params: implicit_at(prob, val, hp, params, rtol=1e-10))
    rows = []
    for eps in EPS_GRID:
        theta, _ = inner(theta0, hp, eps)
        res = at(unravel(theta))
        rows.append(
            (
                float(res.inner_residual),
                abs(float(res.hypergrad) - float(exact.hypergrad)),
                float(res.error_estimate),
            )
        )
    return np.array(rows), float(exact.hypergrad)


def descend(prob, val, inner, theta0, unravel, tolerances) -> dict:
    """Hypergradient descent in lambda with inner tolerance ``tolerances[k]`` (note eq. (5))."""
    at = jax.jit(lambda params, hp: implicit_at(prob, val, hp, params, rtol=1e-10))
    lam, theta, total = LOG_LAM0, theta0, 0
    lams, vals, cost = [], [], []
    for eps in tolerances:
        theta, k = inner(theta, jnp.asarray(lam), eps)  # warm start
        total += int(k)
        res = at(unravel(theta), jnp.asarray(lam))
        lams.append(lam)
        vals.append(float(res.value))
        cost.append(total)
        lam = lam - STEP * float(res.hypergrad)
    return {"lam": np.array(lams), "val": np.array(vals), "inner_iterations": np.array(cost)}


def reproduce(quick: bool = False, out_dir: Path = HERE) -> dict:
    """Both studies, the figure, the numbers."""
    K = 40 if quick else 60
    # summable (note eq. (6)), floored at the exact method's tolerance: gradient descent cannot
    # reach a gradient norm far below round-off (0.1 * 0.5^60 = 9e-20)
    tolerances = np.maximum(0.1 * 0.5 ** np.arange(1, K + 1, dtype=float), EPS_EXACT)
    prob, val, L_x = make_problem()
    inner, theta0, unravel = make_inner(prob, L_x)
    rows, exact_hg = error_study(prob, val, inner, theta0, unravel)
    hoag = descend(prob, val, inner, theta0, unravel, tolerances)
    exact = descend(prob, val, inner, theta0, unravel, np.full(K, EPS_EXACT))
    fit = rows[:, 1] > 1e-12  # above round-off of the reference
    slope = float(np.polyfit(np.log(rows[fit, 0]), np.log(rows[fit, 1]), 1)[0])
    ratio = rows[fit, 2] / rows[fit, 1]
    out = {
        "exact_hypergrad": exact_hg,
        "residuals": rows[:, 0].tolist(),
        "errors": rows[:, 1].tolist(),
        "estimates": rows[:, 2].tolist(),
        "error_slope": slope,
        "estimate_over_error": (float(ratio.min()), float(ratio.max())),
        "final_lam": {"hoag": float(hoag["lam"][-1]), "exact": float(exact["lam"][-1])},
        "final_val": {"hoag": float(hoag["val"][-1]), "exact": float(exact["val"][-1])},
        "inner_iterations": {
            "hoag": int(hoag["inner_iterations"][-1]),
            "exact": int(exact["inner_iterations"][-1]),
        },
        "outer_iterations": K,
    }
    out["iteration_ratio"] = out["inner_iterations"]["exact"] / out["inner_iterations"]["hoag"]
    out["figure"] = str(_figure(rows, hoag, exact, Path(out_dir)))
    return out


def _figure(rows, hoag, exact, out_dir: Path) -> Path:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11.0, 4.2))
    a.loglog(rows[:, 0], rows[:, 1], "o-", label="|hypergradient error| (vs Newton-exact)")
    a.loglog(rows[:, 0], rows[:, 2], "x--", label="gradlab's error estimate (one Newton step)")
    a.loglog(rows[:, 0], rows[0, 1] * rows[:, 0] / rows[0, 0], "k:", lw=1, label="slope 1")
    a.set(xlabel=r"inner residual $\|\nabla_\theta L\|$", ylabel="error",
          title="hypergradient error = O(inner tolerance)")  # fmt: skip
    a.legend(fontsize=8)
    star = exact["lam"][-1]
    for name, run in (("HOAG, eps_k = 0.1 * 0.5^k", hoag), ("exact, eps = 1e-10", exact)):
        b.semilogy(run["inner_iterations"], np.abs(run["lam"] - star) + 1e-16, ".-", label=name)
    b.set(xlabel="cumulative inner gradient iterations",
          ylabel=r"$|\lambda_k - \lambda^*|$ (log-lambda)",
          title="hypergradient descent in log(lambda)")  # fmt: skip
    b.legend(fontsize=8)
    return save_figure(fig, out_dir / "hoag.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 outer iterations (the test's size)")
    r = reproduce(ap.parse_args(argv).quick)
    print(f"hypergradient error vs inner residual: log-log slope {r['error_slope']:.3f} (1)")
    lo, hi = r["estimate_over_error"]
    print(f"gradlab's error estimate / true error: {lo:.3f} .. {hi:.3f}")
    print(
        f"final log(lambda): HOAG {r['final_lam']['hoag']:.8f}, exact {r['final_lam']['exact']:.8f}"
    )
    print(
        f"final validation loss: HOAG {r['final_val']['hoag']:.10f}, "
        f"exact {r['final_val']['exact']:.10f}"
    )
    print(
        f"inner iterations: HOAG {r['inner_iterations']['hoag']}, exact "
        f"{r['inner_iterations']['exact']} ({r['iteration_ratio']:.2f}x)"
    )
    print(f"wrote {r['figure']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
