r"""Beck and Teboulle (2009): ISTA's objective gap falls as O(1/k), FISTA's as O(1/k^2); adaptive
restart (O'Donoghue and Candès 2015) does better still.

Command (writes ``papers/fista/fista.png`` and prints the claim's numbers)::

    python papers/fista/repro.py            # K = 3000 iterations, about 12 s of CPU
    python papers/fista/repro.py --quick    # K = 1000, the size the test runs, about 10 s of CPU

The lasso of ``note.md`` eq. (1), :math:`F(x) = \tfrac12\lVert Ax-b\rVert^2 + \lambda\lVert
x\rVert_1`, with :math:`A = U\,\mathrm{diag}(\sigma)V^\top` (400 x 400, :math:`\sigma_i^2`
log-spaced over six decades, so :math:`L = 1`) and :math:`b = A V s`, :math:`s \in \{\pm1\}^d`.
Every method runs through :func:`gradlab.fit` with :func:`gradlab.optim.ista` /
:func:`gradlab.optim.fista` and step :math:`1/L`; :math:`F^\star` comes from a long restarted
FISTA run whose KKT residual (note eq. (9)) is printed.

The numbers it prints (``--quick`` and full agree; the seed is fixed):

* log-log slope of the gap over k in [10, 300]: ISTA about -0.9 (note eq. (6)), FISTA about
  -2.3 (note eq. (7)); over that window gap/bound stays between 0.03 and 0.25;
* gap at k = 1000: FISTA with restart about 1e-8, about 100x below plain FISTA.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import gradlab
from gradlab import optim
from gradlab.plot import loglog_slope, plot_convergence, save_figure

jax.config.update("jax_enable_x64", True)

HERE = Path(__file__).resolve().parent
WINDOW = (10, 300)  # where both bounds are tight on this instance (note, section 4)
K_COMPARE = 1000  # where restart is compared with plain FISTA


@dataclasses.dataclass(frozen=True)
class Lasso:
    """The instance: ``A`` (n, d), ``b`` (n,), ``lam`` and the Lipschitz constant ``L``."""

    A: jax.Array
    b: jax.Array
    lam: float
    L: float


def smooth(params, A, b):
    r"""The smooth part :math:`f(x) = \tfrac12\lVert Ax - b\rVert^2`, note eq. (1)."""
    r = A @ params["x"] - b
    return 0.5 * jnp.dot(r, r)


def objective(x, prob: Lasso):
    r""":math:`F(x) = f(x) + \lambda\lVert x\rVert_1`, note eq. (1), on the bare array ``x``."""
    r = prob.A @ x - prob.b
    return 0.5 * jnp.dot(r, r) + prob.lam * jnp.sum(jnp.abs(x))


def make_lasso(d: int = 400, decades: float = 6.0, lam_rel: float = 1e-3, seed: int = 0) -> Lasso:
    """The ill-conditioned lasso of note section 4 (eigenvalues of A^T A log-spaced)."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((d, d)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    sigma = 10.0 ** (-0.5 * decades * np.linspace(0.0, 1.0, d))
    A = (U * sigma) @ V.T
    s = rng.choice([-1.0, 1.0], d)
    b = A @ (V @ s)
    lam = lam_rel * float(np.max(np.abs(b @ A)))
    L = float(np.linalg.norm(A, 2) ** 2)  # sigma_max^2 = 1, the Lipschitz constant of grad f
    return Lasso(jnp.asarray(A), jnp.asarray(b), lam, L)


def _prox_grad_map(prob: Lasso):
    """``y -> prox(y - grad f(y) / L)``: FISTA's next iterate from its params, note eq. (4)."""

    def T(y):
        g = (prob.A @ y - prob.b) @ prob.A
        return optim.soft_threshold(y - g / prob.L, prob.lam / prob.L)

    return T


def run(prob: Lasso, method: str, steps: int) -> np.ndarray:
    """``F(x_k)`` for ``k = 1..steps`` of ``method`` in ``{"ista", "fista", "restart"}``.

    ISTA's params are its iterates. FISTA's params are the extrapolated points ``y_k``; the
    iterate ``x_{k+1} = T(y_k)`` (note eq. (4)) is recorded as a metric, so history entry ``r``
    (params ``y_r``) holds ``F(x_{r+1})``; ``F(x_1) = F(T(x_0))`` is prepended.
    """
    d = prob.A.shape[1]
    p0 = {"x": jnp.zeros(d)}
    eta = 1.0 / prob.L
    if method == "ista":
        opt = optim.ista(eta, prob.lam)
        metrics = {"F": lambda p: objective(p["x"], prob)}
    elif method in ("fista", "restart"):
        opt = optim.fista(eta, prob.lam, restart=method == "restart")
        T = _prox_grad_map(prob)
        metrics = {"F": lambda p: objective(T(p["x"]), prob)}
    else:
        raise ValueError(f"method must be 'ista', 'fista' or 'restart'; got {method!r}")
    n_fit = steps if method == "ista" else steps - 1
    res = gradlab.fit(smooth, p0, (prob.A, prob.b), opt, n_fit, metrics=metrics)
    if bool(res.diverged):
        raise RuntimeError(f"{method} diverged at step size 1/L = {eta}")
    F = np.asarray(res.history["F"])
    if method != "ista":
        F = np.concatenate([[float(objective(_prox_grad_map(prob)(p0["x"]), prob))], F])
    return F


def reference(prob: Lasso, steps: int) -> tuple[float, np.ndarray, float]:
    """``(F*, x*, kkt)``: a long restarted FISTA run and its KKT residual, note eq. (9)."""
    d = prob.A.shape[1]
    opt = optim.fista(1.0 / prob.L, prob.lam, restart=True)
    res = gradlab.fit(smooth, {"x": jnp.zeros(d)}, (prob.A, prob.b), opt, steps)
    x = _prox_grad_map(prob)(res.params["x"])
    g = (prob.A @ x - prob.b) @ prob.A
    on = x != 0
    kkt = jnp.where(on, g + prob.lam * jnp.sign(x), jnp.maximum(jnp.abs(g) - prob.lam, 0.0))  # (9)
    return float(objective(x, prob)), np.asarray(x), float(jnp.max(jnp.abs(kkt)))


def reproduce(quick: bool = False, out_dir: Path = HERE) -> dict:
    """Run all three methods, fit the slopes, draw the figure; return the numbers."""
    steps = 1000 if quick else 3000
    prob = make_lasso()
    F_star, x_star, kkt = reference(prob, 6000)
    R2 = float(np.sum(x_star**2))  # ||x_0 - x*||^2 with x_0 = 0
    k = np.arange(1, steps + 1, dtype=float)
    gaps = {m: run(prob, m, steps) - F_star for m in ("ista", "fista", "restart")}
    bounds = {
        "ista": prob.L * R2 / (2 * k),  # note eq. (6)
        "fista": 2 * prob.L * R2 / (k + 1) ** 2,  # note eq. (7)
    }
    lo, hi = WINDOW
    win = (k >= lo) & (k <= hi)
    out = {
        "F_star": F_star,
        "kkt_residual": kkt,
        "L": prob.L,
        "lam": prob.lam,
        "nnz_star": int(np.sum(x_star != 0)),
        "window": WINDOW,
        "slope_ista": loglog_slope(k, gaps["ista"], lo, hi),
        "slope_fista": loglog_slope(k, gaps["fista"], lo, hi),
        "slope_restart": loglog_slope(k, gaps["restart"], lo, hi),
        "bound_ratio_ista": (
            float(np.min(gaps["ista"][win] / bounds["ista"][win])),
            float(np.max(gaps["ista"][win] / bounds["ista"][win])),
        ),
        "bound_ratio_fista": (
            float(np.min(gaps["fista"][win] / bounds["fista"][win])),
            float(np.max(gaps["fista"][win] / bounds["fista"][win])),
        ),
        "bound_holds_ista": bool(np.all(gaps["ista"] <= bounds["ista"])),
        "bound_holds_fista": bool(np.all(gaps["fista"] <= bounds["fista"])),
        "gap_at_compare": {m: float(gaps[m][K_COMPARE - 1]) for m in gaps},
        "min_gap": {m: float(np.min(gaps[m])) for m in gaps},
    }
    out["restart_over_fista"] = out["gap_at_compare"]["restart"] / out["gap_at_compare"]["fista"]
    fig = plot_convergence(
        {
            "ISTA": (k, gaps["ista"]),
            "FISTA": (k, gaps["fista"]),
            "FISTA + adaptive restart (= FISTA until its first restart)": (k, gaps["restart"]),
        },
        slopes={"ISTA": WINDOW, "FISTA": WINDOW},
        guides={
            r"ISTA bound $L\|x_0-x^*\|^2/(2k)$": (k, bounds["ista"]),
            r"FISTA bound $2L\|x_0-x^*\|^2/(k+1)^2$": (k, bounds["fista"]),
        },
        title=f"Lasso, d={prob.A.shape[1]}, cond(A^T A)=1e6: objective gap $F(x_k)-F^*$",
        ylabel=r"$F(x_k) - F^*$",
    )
    fig.axes[0].axvspan(*WINDOW, color="0.9", zorder=0)
    out["figure"] = str(save_figure(fig, Path(out_dir) / "fista.png"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="K = 1000 iterations (the test's size)")
    args = ap.parse_args(argv)
    r = reproduce(args.quick)
    lo, hi = r["window"]
    print(
        f"F* = {r['F_star']:.12g} (KKT residual {r['kkt_residual']:.1e}, {r['nnz_star']} nonzeros)"
    )
    print(f"log-log slope of F(x_k) - F* over k in [{lo}, {hi}]:")
    print(f"  ISTA    {r['slope_ista']:+.2f}   (Beck-Teboulle bound: -1)")
    print(f"  FISTA   {r['slope_fista']:+.2f}   (bound: -2)")
    ri, rf = r["bound_ratio_ista"], r["bound_ratio_fista"]
    print(
        f"gap / bound in the window: ISTA [{ri[0]:.3f}, {ri[1]:.3f}], "
        f"FISTA [{rf[0]:.3f}, {rf[1]:.3f}]"
    )
    print(f"bound holds at every k: ISTA {r['bound_holds_ista']}, FISTA {r['bound_holds_fista']}")
    g = r["gap_at_compare"]
    print(
        f"gap at k={K_COMPARE}: ISTA {g['ista']:.2e}, FISTA {g['fista']:.2e}, "
        f"restart {g['restart']:.2e} (restart/FISTA = {r['restart_over_fista']:.2e})"
    )
    print(f"figure: {r['figure']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
