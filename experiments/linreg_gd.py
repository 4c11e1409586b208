r"""Linear regression by gradient descent, seed 002: learning rates, stability, mini-batches.

Command::

    gradlab run linreg_gd            # full size
    gradlab run linreg_gd --quick    # the CI size

Runtime on a 2-core CPU (AMD EPYC, measured 2026-11-23): full ~10 s, quick ~11 s of
CPU time, most of it jit compilation (wall time on the shared, loaded machine was 3-6x that).

Data (seed 002, section 1, exactly): ``rng = np.random.default_rng(42)``,
``x = np.linspace(0, 10, 80)``, ``y = 2.5 + 1.7 x + rng.normal(0, 1, 80)``. The model is the
seed's :math:`\hat y = \theta_0 + \theta_1 x` with :math:`J = \tfrac1n\lVert X\theta - y\rVert^2`
(``gradlab.derivations.mse.mse_mean``, bias ``b`` = :math:`\theta_0`, ``w`` = :math:`\theta_1`).

Plain gradient descent on a quadratic with Hessian :math:`H` is stable iff
:math:`\alpha < 2/\lambda_{\max}(H)`. Here :math:`H = \tfrac2n \tilde X^\top\tilde X` with
eigenvalues 0.498 and 68.59, so the bound is :math:`\alpha^* = 0.02916`
(``gradlab.train.max_stable_lr``): of the seed's rates [0.001, 0.01, 0.05, 0.2], **0.05 and
0.2 diverge**, yet the seed's section 5 trains at 0.05 and compares the result to OLS (its
``theta_gd`` is ~1e77 after 400 steps), and its mini-batch run also uses 0.05. The
condition number 138 makes the stable rates slow: 0.01 is still far from OLS after the seed's 200
steps.

What it reproduces (the numbers a test asserts):

* OLS / lstsq / normal equation: :math:`\theta = (2.5467, 1.6958)`; GD at
  :math:`\alpha = 0.9\alpha^*` reaches lstsq within 1e-10.
* stability bound 0.02916; the seed's 0.05 and 0.2 and the assignment's 0.5 flagged diverged; the
  dense sweep's first diverging rate lies just above the bound.
* mini-batch GD (batch 16, without replacement as the seed draws) at a stable rate ends within
  noise of OLS; at the seed's 0.05 it diverges.
* the assignment's early stopping (improvement < 1e-6 for 10 consecutive steps) stops a run at
  0.01 well before its step budget.

Plots: ``lr_comparison.png`` (the seed's section 8, diverged runs marked), ``lr_sweep.png``
(final loss against the rate, with the bound), ``batch_vs_minibatch.png`` (section 10),
``landscape.png`` (section 7's contour with the GD paths drawn on it), ``early_stopping.png``.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gradlab import datasets, optim, plot
from gradlab.derivations import mse
from gradlab.sweeps import sweep
from gradlab.train import EarlyStop, fit, max_stable_lr

from ._common import main, prepare_out, write_metrics

NAME = "linreg_gd"
SEED_LRS = (0.001, 0.01, 0.05, 0.2)
ASSIGNMENT_LR = 0.5
SUMMARY_KEYS = [
    "theta_lstsq",
    "theta_gd",
    "gd_vs_lstsq_max_abs",
    "stability_bound",
    "diverged_lrs",
    "sweep_first_diverging_lr",
    "minibatch_final_loss",
    "early_stop_steps",
]


def seed_data() -> tuple[np.ndarray, np.ndarray]:
    """Seed 002's data set, drawn exactly as the seed draws it: ``(x (80,), y (80,))``."""
    X, y = datasets.noisy_line()
    return X[:, 0], y


def _theta(params) -> np.ndarray:
    """``(theta0, theta1)`` = (bias, slope) of a ``{"w": (1,), "b": ()}`` parameter dict."""
    return np.array([float(params["b"]), float(params["w"][0])])


def run(quick: bool = False, out_dir: str | os.PathLike = "results/linreg_gd") -> dict:
    """Run the experiment, write ``metrics.json`` and the plots into ``out_dir``, return metrics."""
    out = prepare_out(out_dir)
    x, y_np = seed_data()
    X = jnp.asarray(x[:, None])
    y = jnp.asarray(y_np)
    data = (X, y)
    params0 = {"w": jnp.zeros(1), "b": jnp.zeros(())}
    loss, grad = mse.mse_mean, mse.mse_mean_grad
    metrics: dict = {"quick": quick, "n": int(x.shape[0])}

    # ---- closed forms (section 6): lstsq and the normal equation, as oracles ------------------
    p_lstsq = optim.lstsq(X, y)
    theta_lstsq = _theta(p_lstsq)
    theta_normal = _theta(optim.normal_equation(X, y))  # the seed's (X^T X)^-1 X^T y
    metrics["theta_lstsq"] = theta_lstsq
    metrics["theta_normal_equation"] = theta_normal
    opt_loss = float(loss(p_lstsq, X, y))
    metrics["loss_at_optimum"] = opt_loss

    # ---- the stability bound ------------------------------------------------------------------
    bound = float(max_stable_lr(loss, params0, X, y))
    metrics["stability_bound"] = bound

    # ---- batch GD at every rate of interest in one vmapped call (one compilation) ------------
    # the seed's rates (section 8), the assignment's 0.5 (section 11) and 0.9 * bound, which
    # converges to lstsq; each run records its path (theta0, theta1) for the landscape.
    steps = 2500 if quick else 5000
    lr_conv = 0.9 * bound
    rates = (*SEED_LRS, ASSIGNMENT_LR, lr_conv)
    path_metrics = {"theta0": lambda p: p["b"], "theta1": lambda p: p["w"][0]}

    def gd(lr):
        return fit(loss, params0, data, optax.sgd(lr), steps, grad=grad, metrics=path_metrics)

    runs = jax.jit(jax.vmap(gd))(jnp.asarray(rates))
    hist = np.asarray(runs.history["loss"])
    taken = np.asarray(runs.steps_taken)
    div = np.asarray(runs.diverged)
    theta_gd = _theta(jax.tree.map(lambda a: a[-1], runs.params))
    metrics["lr_converge"] = lr_conv
    metrics["steps_converge"] = steps
    metrics["theta_gd"] = theta_gd
    metrics["gd_vs_lstsq_max_abs"] = float(np.max(np.abs(theta_gd - theta_lstsq)))
    metrics["lstsq_vs_normal_equation_max_abs"] = float(np.max(np.abs(theta_lstsq - theta_normal)))

    steps_seed = 200  # section 8 trains 200 steps; a run diverged by then froze before step 200
    curves, finals, diverged, diverged_at = {}, {}, [], {}
    for i, lr in enumerate((*SEED_LRS, ASSIGNMENT_LR)):
        if div[i] and taken[i] < steps_seed:
            diverged.append(lr)
            diverged_at[str(lr)] = int(taken[i]) + 1
            finals[str(lr)] = float("inf")
        else:
            finals[str(lr)] = float(hist[i, steps_seed - 1])
        if lr in SEED_LRS:
            h = hist[i, :steps_seed].copy()
            if div[i]:
                h[int(taken[i]) :] = np.inf  # frozen entries: mark the divergence for the plot
            curves[f"alpha={lr}"] = (np.arange(1, steps_seed + 1), h)
    metrics["seed_lr_loss_after_200_steps"] = finals
    metrics["diverged_lrs"] = diverged
    metrics["diverged_at_step"] = diverged_at
    # the seed's section 5 run trains at 0.05 for 400 steps and compares it to OLS
    metrics["seed_section5_alpha_0.05_diverged"] = bool(div[SEED_LRS.index(0.05)])

    # ---- dense sweep over the rate (gradlab.sweep) ------------------------------------------
    n_lrs = 24 if quick else 96
    lrs = np.geomspace(1e-3, 0.2, n_lrs)

    def train_one(hp, key):
        del key  # full-batch GD is deterministic
        return fit(loss, params0, data, optax.sgd(hp["lr"]), steps_seed, grad=grad)

    table = sweep(train_one, {"lr": lrs}, progress=False).table()
    sweep_div = np.asarray(table["diverged"], dtype=bool)
    sweep_loss = np.asarray(table["loss"], dtype=float)
    sweep_lrs = np.asarray(table["lr"], dtype=float)
    first = sweep_lrs[sweep_div].min() if sweep_div.any() else float("nan")
    last_ok = sweep_lrs[~sweep_div].max() if (~sweep_div).any() else float("nan")
    metrics["sweep_n"] = int(n_lrs)
    metrics["sweep_first_diverging_lr"] = float(first)
    metrics["sweep_last_converging_lr"] = float(last_ok)
    metrics["sweep_consistent_with_bound"] = bool(last_ok < bound <= first)

    # ---- mini-batch GD (section 10): batch 16 without replacement, full loss tracked ---------
    # fit's history is the full-data loss in mini-batch mode too, as the seed tracks it.
    steps_mb = 400

    def minibatch(lr):
        return fit(
            loss,
            params0,
            data,
            optax.sgd(lr),
            steps_mb,
            grad=grad,
            key=jax.random.key(42),
            batch_size=16,
            sampling="without_replacement",
        )

    mb = jax.jit(jax.vmap(minibatch))(jnp.asarray([0.01, 0.05]))
    mb_hist = np.asarray(mb.history["loss"])
    metrics["minibatch_final_loss"] = float(mb_hist[0, -1])
    metrics["batch_final_loss_lr_0.01"] = float(hist[SEED_LRS.index(0.01), steps_mb - 1])
    metrics["minibatch_theta"] = _theta(jax.tree.map(lambda a: a[0], mb.params))
    metrics["minibatch_seed_lr_0.05_diverged"] = bool(np.asarray(mb.diverged)[1])

    # ---- early stopping (the assignment): improvement < 1e-6 for 10 consecutive steps --------
    budget = 5000
    es = fit(
        loss,
        params0,
        data,
        optax.sgd(0.01),
        budget,
        grad=grad,
        early_stop=EarlyStop(tol=1e-6, patience=10),
    )
    metrics["early_stop_budget"] = budget
    metrics["early_stop_steps"] = int(es.steps_taken)
    metrics["early_stop_stopped"] = bool(es.stopped_early)
    metrics["early_stop_final_loss"] = float(loss(es.params, X, y))
    metrics["early_stop_gap_to_optimum"] = metrics["early_stop_final_loss"] - opt_loss

    # ---- plots --------------------------------------------------------------------------------
    plot.save_figure(
        plot.plot_curves(
            curves,
            title="Learning rate comparison (seed 002, section 8)",
            ylabel="MSE",
            logy=True,
            hline=(opt_loss, "OLS optimum"),
        ),
        out / "lr_comparison.png",
    )
    finite = np.where(sweep_div, np.nan, sweep_loss)
    fig = plot.plot_curves(
        {"final MSE after 200 steps": (sweep_lrs, finite)},
        title=f"Dense rate sweep: diverges above 2/lambda_max = {bound:.4f}",
        xlabel="learning rate",
        ylabel="final MSE",
        logy=True,
    )
    ax = fig.axes[0]
    ax.set_xscale("log")
    ax.axvline(bound, color="red", linestyle="--", label=f"stability bound {bound:.4f}")
    for lr in SEED_LRS:
        ax.axvline(lr, color="0.6", linestyle=":", linewidth=1)
    ax.legend(fontsize=8)
    plot.save_figure(fig, out / "lr_sweep.png")
    plot.save_figure(
        plot.plot_curves(
            {
                "batch GD (alpha=0.01)": hist[SEED_LRS.index(0.01), :steps_mb],
                "mini-batch GD (alpha=0.01, b=16)": mb_hist[0],
            },
            title="Batch vs mini-batch (full loss tracked, seed 002 section 10)",
            ylabel="MSE",
            logy=True,
            hline=(opt_loss, "OLS optimum"),
        ),
        out / "batch_vs_minibatch.png",
    )
    plot.save_figure(
        plot.plot_curves(
            {"alpha=0.01": np.asarray(es.history["loss"])[: int(es.steps_taken)]},
            title=f"Early stopping: improvement < 1e-6 for 10 steps -> stop at {es.steps_taken}",
            ylabel="MSE",
            logy=True,
            hline=(opt_loss, "OLS optimum"),
        ),
        out / "early_stopping.png",
    )
    t0 = np.linspace(-1, 6, 80)
    t1 = np.linspace(0, 3, 80)
    T0, T1 = np.meshgrid(t0, t1)
    grid_loss = jax.jit(jax.vmap(lambda a, b: loss({"w": b[None], "b": a}, X, y)))
    Z = np.asarray(grid_loss(jnp.asarray(T0.ravel()), jnp.asarray(T1.ravel()))).reshape(T0.shape)
    th0, th1 = np.asarray(runs.history["theta0"]), np.asarray(runs.history["theta1"])
    i_conv, i_slow = len(rates) - 1, SEED_LRS.index(0.01)
    path = np.stack([th0[i_conv, :200], th1[i_conv, :200]], axis=1)
    path2 = np.stack([th0[i_slow, :200], th1[i_slow, :200]], axis=1)
    plot.save_figure(
        plot.plot_landscape(
            t0,
            t1,
            Z,
            paths={f"GD alpha={lr_conv:.4f}": path, "GD alpha=0.01": path2},
            marks={"OLS": (theta_lstsq[0], theta_lstsq[1])},
            xlabel="theta0 (intercept)",
            ylabel="theta1 (slope)",
            title="Loss contour with GD paths (seed 002, section 7)",
        ),
        out / "landscape.png",
    )
    metrics["plots"] = {
        "lr_comparison.png": "the seed's four rates: 0.05 and 0.2 diverge",
        "lr_sweep.png": "final loss over a dense rate sweep, divergence right above 2/lambda_max",
        "batch_vs_minibatch.png": "batch and mini-batch GD, full loss tracked",
        "early_stopping.png": "the assignment's early-stopping rule",
        "landscape.png": "the MSE bowl with GD paths; the narrow valley is the condition number",
    }
    metrics["checks"] = {
        "gd reaches lstsq within 1e-10": metrics["gd_vs_lstsq_max_abs"] < 1e-10,
        "alpha=0.05 (the seed's rate) diverges": 0.05 in diverged,
        "every seed rate above the bound diverges, every one below does not": sorted(diverged)
        == sorted(lr for lr in (*SEED_LRS, ASSIGNMENT_LR) if lr > bound),
        "sweep divergence threshold brackets the bound": metrics["sweep_consistent_with_bound"],
        "early stopping stops before the budget": metrics["early_stop_stopped"],
    }
    write_metrics(out / "metrics.json", metrics)
    return metrics


if __name__ == "__main__":
    main(NAME, run, __doc__)
