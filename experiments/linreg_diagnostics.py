r"""Linear-regression diagnostics (seed 003): R^2, residuals, under-fitting, cost surface, speed.

Command::

    gradlab run linreg_diagnostics            # full size
    gradlab run linreg_diagnostics --quick    # the CI size

Needs scikit-learn (the ``test`` extra) for ``r2_score`` and the polynomial cross-check.
Runtime on a 2-core CPU (AMD EPYC, measured 2026-11-23): full ~14 s, quick ~11 s of
CPU time, most of it jit compilation (wall time on the shared, loaded machine was 3-6x that).

The seed's interactive cells, each made a measured, checked run (its data and defaults):

1. **R^2** (section "R^2 Score"): ``y = 2x + 1 + 0.2 N(0,1)`` on ``linspace(0, 10, 100)``
   (``np.random.seed(0)``), and the sine target. The seed's ``calculate_r2`` equals
   ``sklearn.metrics.r2_score`` to 1e-12 for every model; the least-squares line
   (``gradlab.optim.lstsq``) has R^2 = 0.9988 on the line and 0.009 on the sine. The seed's
   "constant" model predicts ``mean(X)`` where the baseline of R^2 is ``mean(y)``: its R^2 is
   -1.07, not 0.
2. **Residual diagnostics** (section "Assumptions"): mean, spread, correlation with the fitted
   values (0 for least squares), curvature left in the residuals, Durbin-Watson and the runs test
   on residuals ordered by ``x``: independent-looking on the line (DW 1.84, runs z = -1.2),
   structured on the sine (DW 0.15, 10 sign runs where 50 are expected, z = -8.2).
3. **Under-fitting on a curved target** (section "Underfitting"): ``y = sin(x) + 0.1 N(0,1)`` on
   ``linspace(-3, 3, 50)`` (``np.random.seed(42)``), polynomial degrees 1..9 by least squares
   (gradlab) cross-checked with scikit-learn ``PolynomialFeatures + LinearRegression`` (1e-9);
   degree 1 under-fits (train MSE 0.17, R^2 0.61, against 0.012 at degree 3; noise 0.01).
   The seed splits train/test by position (first 70% / last 30% of a sorted ``x``), so its
   "test" error measures extrapolation to ``x > 1.2``: it explodes with the degree. A random
   split is reported beside it.
4. **Cost surface** (section "Visualizing Cost Surface"): ``X = [[1,1],[1,2],[1,3]]``,
   ``y = [1,2,3]``, ``J = 1/(2m) ||X theta - y||^2``, GD from ``(0, 0)`` at the seed's defaults
   (``lr = 0.1``, 50 epochs) through ``gradlab.train.fit``: the path is still 0.22 from the
   optimum ``(0, 1)`` after the seed's 50 epochs (condition number 66); it needs 1068 steps to
   come within 1e-6 (stability bound 0.36).
5. **Vectorization speed-up** (section "Vectorization"): gradient descent on the seed's default
   ``m = 1000, n = 50`` problem, three ways: a Python loop over rows, numpy vectorized, and a
   jitted ``gradlab.train.fit`` loop (``lax.scan``), warm, median of repeats, in one process; the
   table of seconds per step and ratios is written to ``metrics.json`` (``speed``). All three
   reach the same parameters (checked to 1e-12).

Plots: ``r2.png``, ``residuals_line.png``, ``residuals_sine.png``, ``underfitting.png``,
``degree_sweep.png``, ``cost_surface.png``, ``speed.png``.
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gradlab import optim, plot
from gradlab.derivations import mse
from gradlab.train import fit, max_stable_lr

from ._common import main, median_time, prepare_out, require_sklearn, write_metrics

NAME = "linreg_diagnostics"
SUMMARY_KEYS = ["r2_line", "r2_sine", "r2_seed_constant", "dw_line", "dw_sine", "cost_gap_50"]


# ---- the seed's code, carried as written --------------------------------------------------------


def calculate_r2(y_true, y_pred):
    ss_res = np.sum((y_true - y_pred) ** 2)
    ss_tot = np.sum((y_true - np.mean(y_true)) ** 2)
    r2 = 1 - (ss_res / ss_tot)
    return r2


def r2_data(samples=100, noise=0.2, nonlinear=False):
    """Seed 003's ``generate_data`` of the R^2 section (``np.random.seed(0)``, as written)."""
    np.random.seed(0)  # noqa: NPY002 - the seed's own generator, for its draws
    X = np.linspace(0, 10, samples)
    if nonlinear:
        y = np.sin(X) + noise * np.random.randn(samples)  # noqa: NPY002
    else:
        y = 2 * X + 1 + noise * np.random.randn(samples)  # noqa: NPY002
    return X, y


def simple_model(X, mode="linear"):
    """Seed 003's ``simple_model`` ("constant" predicts ``mean(X)``, as written)."""
    if mode == "linear":
        return 2 * X + 1
    elif mode == "constant":
        return np.full_like(X, np.mean(X))
    elif mode == "sine":
        return np.sin(X)
    return np.zeros_like(X)


def underfit_data(samples=50, noise=0.1):
    """Seed 003's ``generate_data`` of the under-fitting section (``np.random.seed(42)``)."""
    np.random.seed(42)  # noqa: NPY002
    X = np.linspace(-3, 3, samples).reshape(-1, 1)
    y = np.sin(X) + noise * np.random.randn(samples, 1)  # noqa: NPY002
    return X, y


# ---- diagnostics --------------------------------------------------------------------------------


def residual_diagnostics(x: np.ndarray, y: np.ndarray, yhat: np.ndarray) -> dict:
    """Residual statistics; ``x`` orders the residuals for Durbin-Watson and the runs test."""
    r = y - yhat
    order = np.argsort(x, kind="stable")
    e = r[order]
    n = e.shape[0]
    dw = float(np.sum(np.diff(e) ** 2) / np.sum(e**2))
    pos = e > 0
    runs = 1 + int(np.sum(pos[1:] != pos[:-1]))
    n1, n2 = int(pos.sum()), int((~pos).sum())
    mean_runs = 2 * n1 * n2 / n + 1
    var_runs = 2 * n1 * n2 * (2 * n1 * n2 - n) / (n**2 * (n - 1))
    # curvature left: R^2 of the residuals regressed on (x, x^2)
    A = np.stack([np.ones(n), x, x**2], axis=1)
    coef, *_ = np.linalg.lstsq(A, r, rcond=None)
    curv_r2 = 1 - np.sum((r - A @ coef) ** 2) / np.sum((r - r.mean()) ** 2)
    return {
        "mean": float(r.mean()),
        "std": float(r.std(ddof=1)),
        "corr_with_fitted": float(np.corrcoef(r, yhat)[0, 1]),
        "curvature_r2": float(curv_r2),
        "durbin_watson": dw,
        "runs": runs,
        "runs_expected": mean_runs,
        "runs_z": float((runs - mean_runs) / math.sqrt(var_runs)),
    }


def _line_fit(x, y):
    """Least-squares line by ``gradlab.optim.lstsq``; returns ``(params, yhat)``."""
    p = optim.lstsq(jnp.asarray(x[:, None]), jnp.asarray(y))
    return p, np.asarray(x * float(p["w"][0]) + float(p["b"]))


def _poly(x, degree):
    return np.stack([(x / 3.0) ** k for k in range(1, degree + 1)], axis=1)  # scaled to [-1, 1]


# ---- the experiment -----------------------------------------------------------------------------


def run(quick: bool = False, out_dir: str | os.PathLike = "results/linreg_diagnostics") -> dict:
    """Run the experiment, write ``metrics.json`` and the plots into ``out_dir``, return metrics."""
    require_sklearn(NAME)
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import PolynomialFeatures

    out = prepare_out(out_dir)
    metrics: dict = {"quick": quick}

    # ---- 1. R^2 ------------------------------------------------------------------------------
    x, y = r2_data()
    xs, ys = r2_data(nonlinear=True)
    _, yhat_line = _line_fit(x, y)
    _, yhat_sine = _line_fit(xs, ys)
    r2 = {
        "lstsq line, linear data": (y, yhat_line),
        "lstsq line, sine data": (ys, yhat_sine),
        "seed 'linear' (2x+1), linear data": (y, simple_model(x, "linear")),
        "seed 'constant' (mean(X)), linear data": (y, simple_model(x, "constant")),
        "constant mean(y), linear data": (y, np.full_like(y, y.mean())),
        "seed 'sine', sine data": (ys, simple_model(xs, "sine")),
    }
    table = {
        k: {"seed": float(calculate_r2(a, b)), "sklearn": float(r2_score(a, b))}
        for k, (a, b) in r2.items()
    }
    metrics["r2_table"] = table
    metrics["r2_max_diff_vs_sklearn"] = max(abs(v["seed"] - v["sklearn"]) for v in table.values())
    metrics["r2_line"] = table["lstsq line, linear data"]["sklearn"]
    metrics["r2_sine"] = table["lstsq line, sine data"]["sklearn"]
    metrics["r2_seed_constant"] = table["seed 'constant' (mean(X)), linear data"]["sklearn"]
    metrics["r2_constant_mean_y"] = table["constant mean(y), linear data"]["sklearn"]
    fig = plot.plot_fits(
        x,
        y,
        {
            f"lstsq line (R^2={metrics['r2_line']:.4f})": yhat_line,
            f"seed 'constant' = mean(X) (R^2={metrics['r2_seed_constant']:.2f})": simple_model(
                x, "constant"
            ),
            f"mean(y) (R^2={metrics['r2_constant_mean_y']:.2f})": np.full_like(y, y.mean()),
        },
        title="R^2: the line, the seed's constant model and the true baseline",
    )
    plot.save_figure(fig, out / "r2.png")

    # ---- 2. residual diagnostics ---------------------------------------------------------------
    metrics["residuals_line"] = residual_diagnostics(x, y, yhat_line)
    metrics["residuals_sine"] = residual_diagnostics(xs, ys, yhat_sine)
    metrics["dw_line"] = metrics["residuals_line"]["durbin_watson"]
    metrics["dw_sine"] = metrics["residuals_sine"]["durbin_watson"]
    plot.save_figure(
        plot.plot_residuals(yhat_line, y - yhat_line, x=x, title="Residuals: line on linear data"),
        out / "residuals_line.png",
    )
    plot.save_figure(
        plot.plot_residuals(yhat_sine, ys - yhat_sine, x=xs, title="Residuals: line on sin(x)"),
        out / "residuals_sine.png",
    )

    # ---- 3. under-fitting on a curved target: polynomial degrees ------------------------------
    Xu, yu2 = underfit_data()
    xu, yu = Xu[:, 0], yu2[:, 0]
    n = xu.shape[0]
    split = int(0.7 * n)  # the seed's positional split
    perm = np.random.default_rng(0).permutation(n)
    splits = {
        "seed (positional)": np.arange(n) < split,
        "random": np.isin(np.arange(n), perm[:split]),
    }
    degrees = list(range(1, 10))
    deg_rows, sk_diff, fits_plot = [], 0.0, {}
    for deg in degrees:
        row = {"degree": deg}
        for name, tr in splits.items():
            A = _poly(xu, deg)
            p = optim.lstsq(jnp.asarray(A[tr]), jnp.asarray(yu[tr]))
            pred = A @ np.asarray(p["w"]) + float(p["b"])
            row[f"train_mse {name}"] = float(np.mean((pred[tr] - yu[tr]) ** 2))
            row[f"test_mse {name}"] = float(np.mean((pred[~tr] - yu[~tr]) ** 2))
            poly = PolynomialFeatures(deg)
            sk = LinearRegression().fit(poly.fit_transform(Xu[tr] / 3.0), yu[tr])
            sk_pred = sk.predict(poly.transform(Xu / 3.0))
            # in-sample predictions (the projection of y, well conditioned); extrapolations of
            # degree 9 amplify rounding in the coefficients by the size of x^9 there
            sk_diff = max(sk_diff, float(np.max(np.abs(sk_pred[tr] - pred[tr]))))
            if name == "random" and deg in (1, 3, 9):
                fits_plot[f"degree {deg}"] = pred
        deg_rows.append(row)
    metrics["degree_table"] = deg_rows
    metrics["poly_max_diff_vs_sklearn"] = sk_diff
    metrics["underfit_train_mse_degree1"] = deg_rows[0]["train_mse random"]
    metrics["underfit_train_mse_degree3"] = deg_rows[2]["train_mse random"]
    metrics["underfit_r2_degree1"] = float(r2_score(yu, _line_fit(xu, yu)[1]))
    plot.save_figure(
        plot.plot_fits(xu, yu, fits_plot, title="Under-fitting sin(x): polynomial degrees"),
        out / "underfitting.png",
    )
    fig = plot.plot_curves(
        {
            f"{kind} {name}": (
                np.asarray(degrees),
                np.asarray([r[f"{kind} {name}"] for r in deg_rows]),
            )
            for kind in ("train_mse", "test_mse")
            for name in splits
        },
        title="Train/test MSE by degree: the seed's positional split tests extrapolation",
        xlabel="polynomial degree",
        ylabel="MSE",
        logy=True,
    )
    plot.save_figure(fig, out / "degree_sweep.png")

    # ---- 4. cost surface with the GD path (through gradlab.fit) -------------------------------
    Xc = jnp.asarray([[1.0], [2.0], [3.0]])
    yc = jnp.asarray([1.0, 2.0, 3.0])
    p0 = {"w": jnp.zeros(1), "b": jnp.zeros(())}
    path_m = {"theta0": lambda p: p["b"], "theta1": lambda p: p["w"][0]}
    long = 3000

    def gd(lr):
        return fit(
            mse.mse_half_mean,
            p0,
            (Xc, yc),
            optax.sgd(lr),
            long,
            grad=mse.mse_half_mean_grad,
            metrics=path_m,
        )

    res = gd(0.1)
    th0 = np.concatenate([[0.0], np.asarray(res.history["theta0"])])
    th1 = np.concatenate([[0.0], np.asarray(res.history["theta1"])])
    dist = np.hypot(th0 - 0.0, th1 - 1.0)
    metrics["cost_gap_50"] = float(dist[50])
    metrics["cost_steps_to_1e-6"] = int(np.argmax(dist < 1e-6)) if (dist < 1e-6).any() else None
    metrics["cost_stability_bound"] = float(max_stable_lr(mse.mse_half_mean, p0, Xc, yc))
    t0 = np.linspace(-10, 10, 80)
    t1 = np.linspace(-1, 5, 80)
    T0, T1 = np.meshgrid(t0, t1)
    grid = jax.jit(jax.vmap(lambda a, b: mse.mse_half_mean({"w": b[None], "b": a}, Xc, yc)))
    Z = np.asarray(grid(jnp.asarray(T0.ravel()), jnp.asarray(T1.ravel()))).reshape(T0.shape)
    plot.save_figure(
        plot.plot_landscape(
            t0,
            t1,
            Z,
            paths={"GD lr=0.1, 50 epochs (seed defaults)": np.stack([th0[:51], th1[:51]], 1)},
            marks={"optimum (0, 1)": (0.0, 1.0)},
            xlabel="theta0",
            ylabel="theta1",
            title="Cost surface + gradient descent path (seed 003)",
            surface=True,
        ),
        out / "cost_surface.png",
    )

    # ---- 5. vectorization speed-up -------------------------------------------------------------
    m, nf = 1000, 50
    rng = np.random.default_rng(0)
    Xv = rng.standard_normal((m, nf))
    yv = Xv @ rng.standard_normal(nf) + 0.1 * rng.standard_normal(m)
    lr = 0.1
    k_loop = 2 if quick else 5
    k_fast = 200 if quick else 2000

    def gd_loop(k):
        theta, b = np.zeros(nf), 0.0
        for _ in range(k):
            r = [float(np.dot(Xv[i], theta)) + b - yv[i] for i in range(m)]  # one row at a time
            g = np.zeros(nf)
            gb = 0.0
            for i in range(m):
                g += (2.0 / m) * r[i] * Xv[i]
                gb += (2.0 / m) * r[i]
            theta, b = theta - lr * g, b - lr * gb
        return theta, b

    def gd_numpy(k):
        theta, b = np.zeros(nf), 0.0
        for _ in range(k):
            r = Xv @ theta + b - yv
            theta, b = theta - lr * (2.0 / m) * (r @ Xv), b - lr * (2.0 / m) * r.sum()
        return theta, b

    Xj, yj = jnp.asarray(Xv), jnp.asarray(yv)
    q0 = {"w": jnp.zeros(nf), "b": jnp.zeros(())}

    def gd_gradlab(k):
        r = fit(
            mse.mse_mean, q0, (Xj, yj), optax.sgd(lr), k, grad=mse.mse_mean_grad, record_every=k
        )
        return jax.block_until_ready(r.params)

    same = [gd_loop(k_loop), gd_numpy(k_loop), gd_gradlab(k_loop)]
    agree = max(
        float(np.max(np.abs(np.asarray(s[0] if isinstance(s, tuple) else s["w"]) - same[1][0])))
        for s in same
    )
    repeats = 3 if quick else 7
    t_loop = median_time(lambda: gd_loop(k_loop), repeats=repeats, warmup=0) / k_loop
    t_np = median_time(lambda: gd_numpy(k_fast), repeats=repeats) / k_fast
    compiled = jax.jit(
        lambda X, y: (
            fit(
                mse.mse_mean,
                q0,
                (X, y),
                optax.sgd(lr),
                k_fast,
                grad=mse.mse_mean_grad,
                record_every=k_fast,
            ).params
        )
    )
    t_jit = median_time(lambda: jax.block_until_ready(compiled(Xj, yj)), repeats=repeats) / k_fast
    speed = {
        "python loop": {"seconds_per_step": t_loop, "speedup_vs_loop": 1.0},
        "numpy vectorized": {"seconds_per_step": t_np, "speedup_vs_loop": t_loop / t_np},
        "gradlab.fit (jit, lax.scan)": {
            "seconds_per_step": t_jit,
            "speedup_vs_loop": t_loop / t_jit,
        },
    }
    metrics["speed_problem"] = {"m": m, "n": nf, "steps_loop": k_loop, "steps_fast": k_fast}
    metrics["speed"] = speed
    metrics["speed_numpy_over_jit"] = t_np / t_jit
    metrics["speed_implementations_agree_max_abs"] = agree
    plot.save_figure(
        plot.plot_bars(
            {k: v["seconds_per_step"] for k, v in speed.items()},
            title=f"GD step on m={m}, n={nf}: seconds per step (log)",
            ylabel="seconds per step",
            logy=True,
            annotate="{:.2e}",
        ),
        out / "speed.png",
    )

    metrics["plots"] = {
        "r2.png": "R^2 of the line, the seed's constant model (mean(X)) and mean(y)",
        "residuals_line.png": "residual panel, line on linear data: no structure",
        "residuals_sine.png": "residual panel, line on sin(x): the curve left in the residuals",
        "underfitting.png": "polynomial fits of degree 1, 3, 9 to sin(x)",
        "degree_sweep.png": "train/test MSE by degree, positional vs random split",
        "cost_surface.png": "the seed's cost surface and GD path at its defaults",
        "speed.png": "seconds per GD step: Python loop, numpy, jitted gradlab.fit",
    }
    metrics["checks"] = {
        "seed calculate_r2 equals sklearn r2_score (1e-12)": metrics["r2_max_diff_vs_sklearn"]
        < 1e-12,
        "polynomial lstsq equals sklearn (1e-8)": sk_diff < 1e-8,
        "residual structure detected on sin, not on the line": metrics["dw_sine"]
        < 1.0
        < metrics["dw_line"],
        "degree 1 under-fits sin(x)": metrics["underfit_train_mse_degree1"]
        > 5 * metrics["underfit_train_mse_degree3"],
        "the three GD implementations agree (1e-12)": agree < 1e-12,
        "speed table has the three rows": len(speed) == 3,
    }
    write_metrics(out / "metrics.json", metrics)
    return metrics


if __name__ == "__main__":
    main(NAME, run, __doc__)
