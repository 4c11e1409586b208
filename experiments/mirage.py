r"""MIRAGE++ (seed 000): entropy-regularized regression on the simplex by mirror descent.

Command::

    gradlab run mirage            # full size
    gradlab run mirage --quick    # the CI size

Needs scikit-learn (the ``test`` extra) for the seed's OLS / Ridge / Lasso comparison.
Runtime on a 2-core CPU (AMD EPYC, measured 2026-11-23): full ~10 s, quick ~14 s of
CPU time, most of it jit compilation (wall time on the shared, loaded machine was 3-6x that).

Data as the seed draws it, seeded: ``X ~ N(0, 1)^(100 x 5)``, ``theta* = (0.2, 0.1, 0.4, 0.1,
0.2)``, ``y = X theta* + 0.1 N(0, 1)`` (``np.random.default_rng(0)``; the seed uses the unseeded
global generator).

The seed minimizes ``L = mean((X theta - y)^2) + lam H(theta)`` with
``H = -sum theta log theta`` (``gradlab.derivations.entropy.mirage``) by exponentiated gradient
(``gradlab.optim.exponentiated_gradient``, the seed's ``theta * exp(-eta g)`` renormalized, in the
log domain) and says this "encourages the weights to be spread out". It does the opposite:
``+lam H`` in a minimized loss *rewards low entropy*. The experiment runs both signs
(``mirage``: ``+lam H``, the seed as written; ``mirage_maxent``: ``-lam H``, the stated aim)
at the seed's ``lam = 0.1, eta = 0.2`` and over a lambda sweep (``gradlab.sweep``), and reports
the entropy of each solution: at ``lam = 0.1`` the seed's sign gives a lower entropy than the
data-only fit, the corrected sign a higher one, and for large ``lam`` the seed's sign collapses
onto a vertex (entropy 0) while the corrected one tends to the uniform ``log 5 = 1.609``.

Cross-check: the ``-lam H`` objective is strictly convex on the simplex, so exponentiated
gradient and projected gradient descent (``gradlab.optim.projected(optax.sgd, ...)`` with
``optax.projections.projection_simplex``) must reach the same point: they agree within 1e-8.
(``+lam H`` is concave in its penalty, has several local minima on the faces of the simplex and a
gradient of ``+inf`` at ``theta_i = 0``: no such cross-check exists for it.)

Plots: ``loss.png`` (the seed's training-loss curve, both signs), ``weights.png`` (the seed's bar
chart: OLS, Ridge, Lasso, both MIRAGE signs), ``lambda_sweep.png`` (entropy of the solution
against lambda, both signs).
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gradlab import optim, plot
from gradlab.check import check_grad
from gradlab.derivations import entropy as ent
from gradlab.sweeps import sweep
from gradlab.train import fit

from ._common import main, prepare_out, require_sklearn, write_metrics

NAME = "mirage"
TRUE_THETA = (0.2, 0.1, 0.4, 0.1, 0.2)
SEED_LAM, SEED_ETA, SEED_ITERS = 0.1, 0.2, 200
SUMMARY_KEYS = [
    "entropy_true_theta",
    "entropy_lam0",
    "entropy_seed_sign",
    "entropy_maxent_sign",
    "eg_vs_projected_max_abs",
    "derivation_checks_ok",
]


def seed_data(seed: int = 0):
    """Seed 000's example data, seeded: ``(X (100, 5), y (100,))``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((100, 5))
    y = X @ np.asarray(TRUE_THETA) + rng.standard_normal(100) * 0.1
    return X, y


def _entropy(theta) -> float:
    return float(ent.entropy({"theta": jnp.asarray(theta)}))


def run(quick: bool = False, out_dir: str | os.PathLike = "results/mirage") -> dict:
    """Run the experiment, write ``metrics.json`` and the plots into ``out_dir``, return metrics."""
    require_sklearn(NAME)
    from sklearn.linear_model import Lasso, LinearRegression, Ridge

    out = prepare_out(out_dir)
    X_np, y_np = seed_data()
    X, y = jnp.asarray(X_np), jnp.asarray(y_np)
    d = X.shape[1]
    p0 = {"theta": jnp.full(d, 1.0 / d)}
    metrics: dict = {"quick": quick, "n": int(X.shape[0]), "d": d, "log_d": math.log(d)}
    metrics["entropy_true_theta"] = _entropy(TRUE_THETA)

    # ---- 1. both derivations through the checker (interior point of the simplex) -------------
    lam = jnp.asarray(SEED_LAM)
    theta_check = {"theta": jax.nn.softmax(jnp.asarray(np.random.default_rng(1).normal(size=d)))}
    checks = {}
    for sign, D in (("seed", ent.MIRAGE), ("maxent", ent.MIRAGE_MAXENT)):
        rep = check_grad(
            D.loss, D.grad, theta_check, X, y, lam, terms=D.terms, term_grads=D.term_grads
        )
        checks[sign] = bool(rep.ok)
    metrics["derivation_checks_ok"] = checks

    # ---- 2. one training function for both signs: sign > 0 is the seed's +lam H ---------------
    def make_train(n_steps: int, record_every: int):
        def train_one(hp, key=None):
            del key  # deterministic
            seed_sign = hp["sign"] > 0
            lam = hp["lam"]

            def loss(p, X, y):
                return jnp.where(
                    seed_sign, ent.mirage(p, X, y, lam), ent.mirage_maxent(p, X, y, lam)
                )

            def grad(p, X, y):
                a, b = ent.mirage_grad(p, X, y, lam), ent.mirage_maxent_grad(p, X, y, lam)
                return jax.tree.map(lambda u, v: jnp.where(seed_sign, u, v), a, b)

            # the seed's eta = 0.2, capped at 1/lam: in the log domain the entropy term contracts
            # by |1 - eta lam| per step, so eta lam > 2 oscillates (a step-size artifact)
            eta = jnp.minimum(SEED_ETA, 1.0 / jnp.maximum(lam, 1e-12))
            return fit(
                loss,
                p0,
                (X, y),
                optim.exponentiated_gradient(eta),
                n_steps,
                grad=grad,
                record_every=record_every,
                divergence_bound=float("inf"),
                metrics={
                    "entropy": lambda p: ent.entropy(p),
                    "mse": lambda p: ent.mse_term(p, X, y, jnp.zeros(())),
                },
            )

        return train_one

    # the seed's run (lam = 0.1, eta = 0.2) for both signs, and lam = 0, in one vmapped call
    steps = SEED_ITERS if quick else 1000
    names = ("seed", "maxent", "lam0")
    configs = {"sign": jnp.asarray([1, -1, 1]), "lam": jnp.asarray([SEED_LAM, SEED_LAM, 0.0])}
    runs = jax.jit(jax.vmap(make_train(steps, 1)))(configs)
    thetas = {k: np.asarray(runs.params["theta"][i]) for i, k in enumerate(names)}
    hists = {k: np.asarray(runs.history["loss"][i]) for i, k in enumerate(names)}
    metrics["eg_steps"] = steps
    metrics["theta_seed_sign"] = thetas["seed"]
    metrics["theta_maxent_sign"] = thetas["maxent"]
    metrics["theta_lam0"] = thetas["lam0"]
    metrics["entropy_seed_sign"] = _entropy(thetas["seed"])
    metrics["entropy_maxent_sign"] = _entropy(thetas["maxent"])
    metrics["entropy_lam0"] = _entropy(thetas["lam0"])
    metrics["final_loss"] = {k: float(runs.loss[i]) for i, k in enumerate(names)}

    # ---- 3. cross-check: EG vs projected gradient on the strictly convex -lam H objective ------
    cc_steps = 3000 if quick else 6000
    loss_mx, grad_mx = ent.mirage_maxent, ent.mirage_maxent_grad

    def solve(optimizer):
        return fit(
            lambda p, X, y: loss_mx(p, X, y, lam),
            p0,
            (X, y),
            optimizer,
            cc_steps,
            grad=lambda p, X, y: grad_mx(p, X, y, lam),
            record_every=cc_steps // 100,
        )

    eg = solve(optim.exponentiated_gradient(0.5))
    pg = solve(optim.projected(optax.sgd(0.2), optax.projections.projection_simplex))
    theta_eg, theta_pg = np.asarray(eg.params["theta"]), np.asarray(pg.params["theta"])
    metrics["crosscheck_steps"] = cc_steps
    metrics["eg_vs_projected_max_abs"] = float(np.max(np.abs(theta_eg - theta_pg)))
    metrics["crosscheck_theta"] = theta_eg

    # ---- 4. the seed's comparison with OLS, Ridge and Lasso (scikit-learn, as the seed) -------
    ols = LinearRegression().fit(X_np, y_np)
    ridge = Ridge(alpha=0.1).fit(X_np, y_np)
    lasso = Lasso(alpha=0.1).fit(X_np, y_np)
    metrics["coef_ols"] = ols.coef_
    metrics["coef_ridge"] = ridge.coef_
    metrics["coef_lasso"] = lasso.coef_

    # ---- 5. lambda sweep, both signs, one compiled sweep ---------------------------------------
    k = 8 if quick else 32
    lams = np.geomspace(1e-3, 10.0, k)
    sweep_steps = 500 if quick else 2000
    train_one = make_train(sweep_steps, sweep_steps)
    res = sweep(train_one, {"lam": lams, "sign": np.array([1, -1])}, progress=False)
    table = res.table()
    L, S = np.asarray(table["lam"]), np.asarray(table["sign"])
    H, M = np.asarray(table["entropy"]), np.asarray(table["mse"])
    metrics["sweep_lams"] = lams
    metrics["sweep_entropy_seed_sign"] = H[S > 0][np.argsort(L[S > 0])]
    metrics["sweep_entropy_maxent_sign"] = H[S < 0][np.argsort(L[S < 0])]
    metrics["sweep_mse_seed_sign"] = M[S > 0][np.argsort(L[S > 0])]
    metrics["sweep_mse_maxent_sign"] = M[S < 0][np.argsort(L[S < 0])]

    # ---- plots --------------------------------------------------------------------------------
    plot.save_figure(
        plot.plot_curves(
            {
                "+lam H (seed as written)": hists["seed"],
                "-lam H (the stated aim)": hists["maxent"],
                "lam = 0": hists["lam0"],
            },
            title=f"MIRAGE++ training loss (EG, lam={SEED_LAM}, eta={SEED_ETA})",
            xlabel="iteration",
        ),
        out / "loss.png",
    )
    plot.save_figure(
        plot.plot_weights(
            {
                "OLS": ols.coef_,
                "Ridge(0.1)": ridge.coef_,
                "Lasso(0.1)": lasso.coef_,
                f"MIRAGE++ +lam H (H={metrics['entropy_seed_sign']:.3f})": thetas["seed"],
                f"MIRAGE++ -lam H (H={metrics['entropy_maxent_sign']:.3f})": thetas["maxent"],
            },
            title="Model weights comparison (seed 000, section 7), both entropy signs",
        ),
        out / "weights.png",
    )
    fig = plot.plot_curves(
        {
            "+lam H (seed): concentrates": (lams, metrics["sweep_entropy_seed_sign"]),
            "-lam H: spreads": (lams, metrics["sweep_entropy_maxent_sign"]),
        },
        title="Entropy of the solution against lambda",
        xlabel="lambda",
        ylabel="H(theta)",
        hline=(math.log(d), f"log {d} (uniform)"),
    )
    fig.axes[0].set_xscale("log")
    fig.axes[0].axhline(metrics["entropy_lam0"], color="0.5", linestyle=":", label="lam = 0")
    fig.axes[0].legend(fontsize=8)
    plot.save_figure(fig, out / "lambda_sweep.png")
    metrics["plots"] = {
        "loss.png": "MIRAGE++ training loss for +lam H, -lam H and lam = 0",
        "weights.png": "the seed's bar chart: OLS, Ridge, Lasso and both MIRAGE++ signs",
        "lambda_sweep.png": "entropy of the solution over lambda: the seed's sign concentrates",
    }
    metrics["checks"] = {
        "mirage and mirage_maxent pass the checker": all(checks.values()),
        "+lam H (seed) solution has lower entropy than -lam H": metrics["entropy_seed_sign"]
        < metrics["entropy_maxent_sign"],
        "+lam H lowers the entropy below the lam = 0 fit, -lam H raises it": metrics[
            "entropy_seed_sign"
        ]
        < metrics["entropy_lam0"]
        < metrics["entropy_maxent_sign"],
        "EG equals projected gradient within 1e-8 (-lam H)": metrics["eg_vs_projected_max_abs"]
        < 1e-8,
    }
    write_metrics(out / "metrics.json", metrics)
    return metrics


if __name__ == "__main__":
    main(NAME, run, __doc__)
