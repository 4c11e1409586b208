r"""MSE + L1 + L2 regression with a bias, seed 001: its backward checked, fixed, fitted, swept.

Command::

    gradlab run regularized_regression            # full size
    gradlab run regularized_regression --quick    # the CI size

Needs scikit-learn (the ``test`` extra) for the Lasso / Ridge / ElasticNet oracles.
Runtime on a 2-core CPU (AMD EPYC, measured 2026-11-23): full ~15 s, quick ~16 s of
CPU time, most of it jit compilation (wall time on the shared, loaded machine was 3-6x that).

Data: ``n`` rows of ``d`` features drawn on scales from 0.1 to 100 (the seed's normalization
note), standardized to z-scores, a sparse true weight vector, ``y = 4 + Z w* + N(0, 1)``.

Seed 001 writes one objective in its markdown and codes another:

.. math::  L_{\text{md}} = \tfrac{1}{2m}\lVert r\rVert^2 + \lambda_1\lVert w\rVert_1
           + \tfrac{\lambda_2}{2}\lVert w\rVert^2 \quad(\text{gradlab.derivations.elastic\_net})
.. math::  L_{\text{code}} = \tfrac{1}{m}\lVert r\rVert^2 + \lambda_1\lVert w\rVert_1
           + \lambda_2\lVert w\rVert^2 = 2\,L_{\text{md}}(\lambda_1/2,\ \lambda_2)

Its ``LinearModel.backward`` (carried below as written) first fails with ``AttributeError``
(it reads ``self.l1_lambda``, which only ``Loss`` defines); with the two attributes handed over,
``gradlab.check.check_grad`` against ``L_code`` with its three named terms flags it and blames
**l1** (``sign(w)`` without the factor :math:`\lambda_1`) and **l2** (:math:`\lambda_2 w`
instead of :math:`2\lambda_2 w`); against ``L_md`` it blames **mse** (a factor 2) and **l1**.
The corrected derivations pass: ``elastic_net`` for ``L_md``, and for ``L_code`` the sum of
``mse_mean``, ``l1`` and ``l2_full``.

Scalings converted explicitly (scikit-learn minimizes ``1/(2n)||r||^2 + alpha*l1_ratio*|w|_1 +
alpha*(1-l1_ratio)/2*||w||^2`` for ElasticNet and Lasso, ``||r||^2 + alpha ||w||^2`` for Ridge):

=============  ============================  ==============================================
objective      Lasso / Ridge                 ElasticNet
=============  ============================  ==============================================
``L_md``       ``alpha=lam1`` / ``n*lam2``   ``alpha=lam1+lam2, l1_ratio=lam1/(lam1+lam2)``
``L_code``     ``alpha=lam1/2`` / ``n*lam2`` ``alpha=lam1/2+lam2, l1_ratio=(lam1/2)/alpha``
=============  ============================  ==============================================

Both objectives are trained with ``gradlab.optim.ista`` (the smooth MSE by its hand gradient,
the penalties by their proximal map, the bias unpenalized) through ``gradlab.train.fit``, and
match scikit-learn (``tol=1e-12``) to ~1e-10. The seed's own training loop (its
``step(0.02)``) converges to the minimizer of a third objective, ``L_code`` with
:math:`\lambda_1 = 1` and half the L2: its weights are reported beside the right ones.

Plots: ``lasso_path.png``, ``ridge_path.png`` (coefficients over the lambda sweeps, the ridge
path checked against ``gradlab.optim.ridge_path``), ``validation.png`` (held-out MSE over the
grid), ``coefficients.png`` (gradlab vs scikit-learn vs the seed's loop).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from gradlab import optim, plot
from gradlab.check import check_grad
from gradlab.derivations import elastic_net as en
from gradlab.derivations import l1 as l1_mod
from gradlab.derivations import l2 as l2_mod
from gradlab.derivations import mse
from gradlab.sweeps import sweep
from gradlab.train import fit, max_stable_lr

from ._common import main, prepare_out, require_sklearn, write_metrics

NAME = "regularized_regression"
TRUE_W = (3.0, -2.0, 0.0, 0.0, 1.5, 0.0, 0.0, 0.0, 0.5, 0.0)
CHECK_LAMS = (0.3, 0.2)  # lam1, lam2 for the gradient check (lam1 = 1 would hide the l1 bug)
CASES = {  # (lam1, lam2) in the markdown convention
    "lasso": (0.1, 0.0),
    "ridge": (0.0, 0.5),
    "elastic_net": (0.1, 0.5),
}
SUMMARY_KEYS = [
    "seed_backward_error",
    "seed_check_ok",
    "seed_blamed_terms_code",
    "seed_blamed_terms_markdown",
    "elastic_net_check_ok",
    "max_abs_vs_sklearn_markdown",
    "max_abs_vs_sklearn_code",
    "ridge_path_max_abs",
]


# ---- seed 001's code, carried as written (numpy), for the checker to judge ---------------------


class LinearModel:
    def __init__(self, input_dim, output_dim):
        # n, p: (row of data, feature#)
        # project matrix input_dim -> output_dim (p, 1)
        self.weight = np.random.randn(input_dim, output_dim) * np.sqrt(2.0 / input_dim)  # noqa: NPY002
        self.bias = np.zeros(output_dim)

    def __call__(self, x):
        self.x = x
        return x @ self.weight + self.bias

    def backward(self, loss_grad):
        # 2/n * (y - y_pred) * X = c * X
        # 2/n * (y - y_pred) * 1 = c * 1
        self.weight_grad = self.x.T @ loss_grad  # (100, 1) @ (100, 1) = self.x @ loss_grad
        self.bias_grad = loss_grad.sum(axis=0)  # axis=1 right and axis=0 down

        if self.l1_lambda is not None:
            self.weight_grad += np.sign(self.weight)

        if self.l2_lambda is not None:
            self.weight_grad += self.l2_lambda * self.weight

    def step(self, lr):
        # key part
        self.weight = self.weight - lr * self.weight_grad
        self.bias = self.bias - lr * self.bias_grad


class Loss:
    def __init__(self, l1_lambda, l2_lambda, model):
        self.l1_lambda = l1_lambda
        self.l2_lambda = l2_lambda
        self.model = model

    def __call__(self, y_true, y_pred):
        self.y_true, self.y_pred = y_true, y_pred
        mse = np.mean((y_true - y_pred) ** 2)  # mse
        l1 = self.l1_lambda * np.sum(np.abs(self.model.weight))
        l2 = self.l2_lambda * np.sum(np.sum(self.model.weight**2))
        return mse + l1 + l2

    def get_loss_grad(self):
        n = self.y_true.shape[0]
        return 2 / n * (self.y_pred - self.y_true)  # c = - 2/n * (self.y_true - self.y_pred)


def _seed_objects(params, X, y, lam1, lam2, hand_over: bool):
    d = X.shape[1]
    model = LinearModel(d, 1)
    loss = Loss(float(lam1), float(lam2), model)
    model.weight = np.asarray(params["w"], dtype=np.float64).reshape(d, 1).copy()
    model.bias = np.asarray(params["b"], dtype=np.float64).reshape(1).copy()
    if hand_over:  # the minimal change that lets backward run: what the author evidently meant
        model.l1_lambda, model.l2_lambda = loss.l1_lambda, loss.l2_lambda
    y_pred = model(np.asarray(X, dtype=np.float64))
    loss(np.asarray(y, dtype=np.float64).reshape(-1, 1), y_pred)
    return model, loss


def seed_backward(params, X, y, lam1, lam2, *, hand_over: bool = True):
    """Seed 001's ``LinearModel.backward`` as a gradient with gradlab's signature (numpy)."""
    model, loss = _seed_objects(params, X, y, lam1, lam2, hand_over)
    model.backward(loss.get_loss_grad())
    d = X.shape[1]
    return {"w": model.weight_grad.reshape(d), "b": model.bias_grad.reshape(())}


def seed_training_loop(X, y, lam1, lam2, epochs: int, lr: float = 0.02):
    """Seed 001's ``train`` (forward, loss, backward, ``step(0.02)``), without print and plot."""
    d = X.shape[1]
    params = {"w": np.zeros(d), "b": np.zeros(())}
    model, loss = _seed_objects(params, X, y, lam1, lam2, hand_over=True)
    yt = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    for _ in range(epochs):
        y_pred = model(np.asarray(X, dtype=np.float64))
        loss(yt, y_pred)
        model.backward(loss.get_loss_grad())
        model.step(lr)
    return {"w": model.weight.reshape(d), "b": model.bias.reshape(())}


# ---- the seed's coded objective as three named terms, from gradlab's derivations ---------------


def code_mse(params, X, y, lam1, lam2):
    """``mean((y - yhat)^2)``: ``Loss.__call__``'s first term (``mse.mse_mean``)."""
    return mse.mse_mean(params, X, y)


def code_l1(params, X, y, lam1, lam2):
    """``l1_lambda * sum|w|`` (``l1.l1``)."""
    return l1_mod.l1({"w": params["w"]}, lam1)


def code_l2(params, X, y, lam1, lam2):
    """``l2_lambda * sum(w^2)`` (``l2.l2_full``)."""
    return l2_mod.l2_full({"w": params["w"]}, lam2)


def code_loss(params, X, y, lam1, lam2):
    """``L_code``, seed 001's ``Loss.__call__``."""
    return (
        code_mse(params, X, y, lam1, lam2)
        + code_l1(params, X, y, lam1, lam2)
        + code_l2(params, X, y, lam1, lam2)
    )


def _zero_b(params):
    return jnp.zeros_like(params["b"])


def code_mse_grad(params, X, y, lam1, lam2):
    return mse.mse_mean_grad(params, X, y)


def code_l1_grad(params, X, y, lam1, lam2):
    return {"w": l1_mod.l1_grad({"w": params["w"]}, lam1)["w"], "b": _zero_b(params)}


def code_l2_grad(params, X, y, lam1, lam2):
    return {"w": l2_mod.l2_full_grad({"w": params["w"]}, lam2)["w"], "b": _zero_b(params)}


def code_grad(params, X, y, lam1, lam2):
    """The corrected backward for ``L_code``: the sum of the three term gradients."""
    parts = [g(params, X, y, lam1, lam2) for g in (code_mse_grad, code_l1_grad, code_l2_grad)]
    return jax.tree.map(lambda a, b, c: a + b + c, *parts)


CODE_TERMS = {"mse": code_mse, "l1": code_l1, "l2": code_l2}
CODE_TERM_GRADS = {"mse": code_mse_grad, "l1": code_l1_grad, "l2": code_l2_grad}


# ---- data and the scikit-learn conversions -----------------------------------------------------


def make_data(n: int, seed: int = 0):
    """Standardized ``(Z, y)`` and a held-out ``(Z_val, y_val)`` from the same generator."""
    d = len(TRUE_W)
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.1, 100.0, d)
    offsets = rng.normal(0.0, 5.0, d)
    raw = rng.normal(size=(2 * n, d)) * scales + offsets
    mean, std = raw[:n].mean(axis=0), raw[:n].std(axis=0)  # statistics of the training half
    Z = (raw - mean) / std
    y = 4.0 + Z @ np.asarray(TRUE_W) + rng.normal(0.0, 1.0, 2 * n)
    return Z[:n], y[:n], Z[n:], y[n:]


def sklearn_fit(kind: str, lam1: float, lam2: float, convention: str, X, y):
    """scikit-learn's solution of ``convention``'s objective at ``(lam1, lam2)``, scalings
    converted as in the module docstring; returns ``(w, b, the sklearn call as text)``."""
    require_sklearn(NAME)
    from sklearn.linear_model import ElasticNet, Lasso, Ridge

    n = X.shape[0]
    a1 = lam1 if convention == "markdown" else lam1 / 2  # L_code = 2 L_md(lam1 / 2, lam2)
    if kind == "lasso":
        model, text = Lasso(alpha=a1, tol=1e-12, max_iter=1_000_000), f"Lasso(alpha={a1:g})"
    elif kind == "ridge":
        model, text = Ridge(alpha=n * lam2, tol=1e-12), f"Ridge(alpha={n * lam2:g})"
    else:
        alpha, ratio = a1 + lam2, a1 / (a1 + lam2)
        model = ElasticNet(alpha=alpha, l1_ratio=ratio, tol=1e-12, max_iter=1_000_000)
        text = f"ElasticNet(alpha={alpha:g}, l1_ratio={ratio:g})"
    model.fit(X, y)
    return model.coef_, float(model.intercept_), text


def _blamed(report, floor: float = 0.05) -> list[str]:
    """Terms whose blame coefficient is non-negligible, largest share first."""
    return [b.term for b in report.blame if abs(b.coef) > floor]


# ---- the experiment -----------------------------------------------------------------------------


def run(quick: bool = False, out_dir: str | os.PathLike = "results/regularized_regression") -> dict:
    """Run the experiment, write ``metrics.json`` and the plots into ``out_dir``, return metrics."""
    require_sklearn(NAME)
    out = prepare_out(out_dir)
    n = 200
    Z, y_np, Zv, yv_np = make_data(n)
    X, y = jnp.asarray(Z), jnp.asarray(y_np)
    d = X.shape[1]
    params0 = {"w": jnp.zeros(d), "b": jnp.zeros(())}
    metrics: dict = {"quick": quick, "n": n, "d": d, "true_w": TRUE_W}

    # ---- 1. the seed's backward through the checker ------------------------------------------
    lam1, lam2 = (jnp.asarray(v) for v in CHECK_LAMS)
    rng = np.random.default_rng(1)
    p_check = {"w": jnp.asarray(rng.normal(size=d)), "b": jnp.asarray(rng.normal())}
    args = (p_check, X, y, lam1, lam2)
    try:
        seed_backward(*args, hand_over=False)
        metrics["seed_backward_error"] = None
    except AttributeError as err:
        metrics["seed_backward_error"] = f"AttributeError: {err}"
    rep_code = check_grad(code_loss, seed_backward, *args, terms=CODE_TERMS)
    rep_md = check_grad(en.elastic_net, seed_backward, *args, terms=en.ELASTIC_NET.terms)
    rep_fixed_code = check_grad(
        code_loss, code_grad, *args, terms=CODE_TERMS, term_grads=CODE_TERM_GRADS
    )
    rep_fixed_md = check_grad(
        en.elastic_net,
        en.elastic_net_grad,
        *args,
        terms=en.ELASTIC_NET.terms,
        term_grads=en.ELASTIC_NET.term_grads,
    )
    metrics["seed_check_ok"] = bool(rep_code.ok)
    metrics["seed_blamed_terms_code"] = _blamed(rep_code)
    metrics["seed_blame_code"] = {b.term: float(b.coef) for b in rep_code.blame}
    metrics["seed_blame_expected_code"] = {
        "l1": (1 - CHECK_LAMS[0]) / CHECK_LAMS[0],  # sign(w) = ((1 - lam1) / lam1 + 1) lam1 sign(w)
        "l2": -0.5,  # lam2 w = (1 - 1/2) 2 lam2 w
    }
    metrics["seed_blamed_terms_markdown"] = _blamed(rep_md)
    metrics["seed_blame_markdown"] = {b.term: float(b.coef) for b in rep_md.blame}
    metrics["code_grad_check_ok"] = bool(rep_fixed_code.ok)  # the terms' checks included
    metrics["elastic_net_check_ok"] = bool(rep_fixed_md.ok)
    metrics["term_checks_ok"] = {
        f"{conv}.{name}": bool(r.ok)
        for conv, rep in (("code", rep_fixed_code), ("markdown", rep_fixed_md))
        for name, r in rep.terms.items()
    }
    (out / "seed_backward_check.txt").write_text(
        "seed 001 LinearModel.backward vs L_code (its Loss.__call__):\n"
        f"{rep_code}\n\nvs L_md (its markdown, gradlab.derivations.elastic_net):\n{rep_md}\n\n"
        f"corrected, L_code:\n{rep_fixed_code}\n\ncorrected, L_md:\n{rep_fixed_md}\n"
    )

    # ---- 2. fits with ISTA, both conventions, against scikit-learn ---------------------------
    steps = 3000 if quick else 6000
    mask = {"w": True, "b": False}
    lr_md = 0.5 * float(max_stable_lr(mse.mse_half_mean, params0, X, y))  # 1 / L
    lr_code = 0.5 * lr_md  # mse_mean = 2 mse_half_mean: twice the curvature, half the step
    lam_grid = jnp.asarray([CASES[k] for k in CASES])

    def fit_md(lams):
        l1v, l2v = lams[0], lams[1]
        return fit(
            lambda p, X, y: en.elastic_net(p, X, y, l1v, l2v),
            params0,
            (X, y),
            optim.ista(lr_md, l1v, l2=l2v, mask=mask),
            steps,
            grad=mse.mse_half_mean_grad,  # the smooth part; the prox takes the penalties
            record_every=steps // 100,
        )

    def fit_code(lams):
        l1v, l2v = lams[0], lams[1]
        return fit(
            lambda p, X, y: code_loss(p, X, y, l1v, l2v),
            params0,
            (X, y),
            optim.ista(lr_code, l1v, l2=2 * l2v, mask=mask),  # lam2 ||w||^2 = (2 lam2)/2 ||w||^2
            steps,
            grad=mse.mse_mean_grad,
            record_every=steps // 100,
        )

    res_md = jax.jit(jax.vmap(fit_md))(lam_grid)
    res_code = jax.jit(jax.vmap(fit_code))(lam_grid)
    coef_table, diffs_md, diffs_code = {}, {}, {}
    for i, (kind, (a, b)) in enumerate(CASES.items()):
        w_md = np.asarray(res_md.params["w"][i])
        b_md = float(res_md.params["b"][i])
        w_code = np.asarray(res_code.params["w"][i])
        b_code = float(res_code.params["b"][i])
        sk_md = sklearn_fit(kind, a, b, "markdown", Z, y_np)
        sk_code = sklearn_fit(kind, a, b, "code", Z, y_np)
        diffs_md[kind] = float(max(np.max(np.abs(w_md - sk_md[0])), abs(b_md - sk_md[1])))
        diffs_code[kind] = float(max(np.max(np.abs(w_code - sk_code[0])), abs(b_code - sk_code[1])))
        coef_table[kind] = {
            "lam1": a,
            "lam2": b,
            "sklearn_markdown": sk_md[2],
            "sklearn_code": sk_code[2],
            "w_gradlab": w_md,
            "w_sklearn": sk_md[0],
            "nonzero": int(np.sum(w_md != 0)),
        }
    metrics["ista_steps"] = steps
    metrics["fits"] = coef_table
    metrics["max_abs_vs_sklearn_markdown"] = max(diffs_md.values())
    metrics["max_abs_vs_sklearn_code"] = max(diffs_code.values())
    metrics["vs_sklearn_markdown"] = diffs_md
    metrics["vs_sklearn_code"] = diffs_code

    # the seed's own loop converges somewhere else: L_code with lam1 = 1 and half the L2
    epochs = 1000 if quick else 3000
    p_seed = seed_training_loop(Z, y_np, CHECK_LAMS[0], CHECK_LAMS[1], epochs)
    right = jax.tree.map(lambda a: a, fit_code(jnp.asarray(CHECK_LAMS)).params)
    metrics["seed_loop_w"] = p_seed["w"]
    metrics["correct_w_code"] = np.asarray(right["w"])
    metrics["seed_loop_vs_correct_max_abs"] = float(np.max(np.abs(p_seed["w"] - right["w"])))

    # ---- 3. sweeps over lam1 and lam2 (markdown convention) ----------------------------------
    k = 6 if quick else 16
    lam1s = np.concatenate([[0.0], np.geomspace(1e-3, 2.0, k - 1)])
    lam2s = np.concatenate([[0.0], np.geomspace(1e-3, 10.0, k - 1)])
    sweep_steps = 1000 if quick else 3000

    def train_one(hp, key):
        del key
        return fit(
            lambda p, X, y: en.elastic_net(p, X, y, hp["lam1"], hp["lam2"]),
            params0,
            (X, y),
            optim.ista(lr_md, hp["lam1"], l2=hp["lam2"], mask=mask),
            sweep_steps,
            grad=mse.mse_half_mean_grad,
            record_every=sweep_steps,
        )

    res = sweep(train_one, {"lam1": lam1s, "lam2": lam2s}, progress=False)
    table = res.table()
    W = np.asarray(res.params["w"])  # (k*k, d), rows in grid order (lam1 outer, lam2 inner)
    B = np.asarray(res.params["b"])
    L1 = np.asarray(table["lam1"])
    L2 = np.asarray(table["lam2"])
    val_mse = np.mean((Zv @ W.T + B[None, :] - yv_np[:, None]) ** 2, axis=0)
    at_l2_0 = L2 == 0
    at_l1_0 = L1 == 0
    path = optim.ridge_path(X, y, jnp.asarray(L2[at_l1_0]))
    metrics["sweep_size"] = int(W.shape[0])
    metrics["ridge_path_max_abs"] = float(np.max(np.abs(np.asarray(path["w"]) - W[at_l1_0])))
    metrics["lasso_nonzero_by_lam1"] = {
        f"{a:.4g}": int(np.sum(w != 0)) for a, w in zip(L1[at_l2_0], W[at_l2_0], strict=True)
    }
    best = int(np.argmin(val_mse))
    metrics["best_val"] = {"lam1": float(L1[best]), "lam2": float(L2[best]), "mse": val_mse[best]}
    metrics["val_mse_unregularized"] = float(val_mse[at_l1_0 & at_l2_0][0])

    # ---- plots --------------------------------------------------------------------------------
    def path_fig(lams, Wsel, title, xlabel, log_from):
        curves = {f"w{j}": (lams[log_from:], Wsel[log_from:, j]) for j in range(d)}
        fig = plot.plot_curves(curves, title=title, xlabel=xlabel, ylabel="coefficient")
        fig.axes[0].set_xscale("log")
        return fig

    plot.save_figure(
        path_fig(L1[at_l2_0], W[at_l2_0], "Lasso path (lam2 = 0): coefficients hit 0", "lam1", 1),
        out / "lasso_path.png",
    )
    plot.save_figure(
        path_fig(L2[at_l1_0], W[at_l1_0], "Ridge path (lam1 = 0): shrunk, never 0", "lam2", 1),
        out / "ridge_path.png",
    )
    curves = {}
    for b2 in lam2s[:: max(1, k // 4)]:
        sel = L2 == b2
        curves[f"lam2={b2:.3g}"] = (L1[sel][1:], val_mse[sel][1:])
    fig = plot.plot_curves(
        curves, title="Held-out MSE over the (lam1, lam2) sweep", xlabel="lam1", ylabel="MSE"
    )
    fig.axes[0].set_xscale("log")
    plot.save_figure(fig, out / "validation.png")
    en_w = coef_table["elastic_net"]
    plot.save_figure(
        plot.plot_weights(
            {
                "true w*": np.asarray(TRUE_W),
                "gradlab ISTA (L_md, elastic net)": en_w["w_gradlab"],
                "scikit-learn ElasticNet": en_w["w_sklearn"],
                "seed's loop (L_code, lam=(0.3, 0.2))": p_seed["w"],
                "correct minimizer of L_code": np.asarray(right["w"]),
            },
            title="Coefficients: gradlab vs scikit-learn vs the seed's training loop",
        ),
        out / "coefficients.png",
    )
    metrics["plots"] = {
        "lasso_path.png": "lasso path over lam1: coefficients reach exactly 0",
        "ridge_path.png": "ridge path over lam2 (matches gradlab.optim.ridge_path)",
        "validation.png": "held-out MSE over the lam1 x lam2 sweep",
        "coefficients.png": "gradlab vs scikit-learn vs the seed's buggy loop",
    }
    metrics["checks"] = {
        "the seed's backward fails as written (AttributeError)": metrics["seed_backward_error"]
        is not None,
        "the checker flags the seed's backward": not metrics["seed_check_ok"],
        "blame names l1 and l2 (L_code)": sorted(metrics["seed_blamed_terms_code"]) == ["l1", "l2"],
        "corrected derivations pass": metrics["elastic_net_check_ok"]
        and metrics["code_grad_check_ok"],
        "ISTA matches scikit-learn within 1e-8 (both scalings)": max(
            metrics["max_abs_vs_sklearn_markdown"], metrics["max_abs_vs_sklearn_code"]
        )
        < 1e-8,
        "swept ridge path matches the closed form within 1e-8": metrics["ridge_path_max_abs"]
        < 1e-8,
    }
    write_metrics(out / "metrics.json", metrics)
    return metrics


if __name__ == "__main__":
    main(NAME, run, __doc__)
