r"""Gradient-checking practice: the error of finite differences against their step size.

Truncation falls with the step, round-off rises as it shrinks; the best central-difference step
sits near the cube root of machine epsilon, in float32 and in float64. Computed with gradlab's
finite-difference witness (the four loss values ``f(x +- h e_i)``, ``f(x +- h/2 e_i)`` of
``gradlab.check``), against the float64 ``jax.grad`` as the truth.

Command (writes ``papers/fd_step/fd_step.png`` and prints the claim's numbers)::

    python papers/fd_step/repro.py           # 16 random points per dtype, about 11 s of CPU
    python papers/fd_step/repro.py --quick   # 4 points per dtype (the test's size)

The function is the registered ``logistic_regression`` loss (mean binary cross-entropy with
logits, ``{"w": (32,), "b": ()}``, 256 rows), at random points from its ``make_args``. For each
power-of-two step :math:`h = 2^{-k}` the error of a difference quotient :math:`D(h)` is
:math:`\lVert D(h) - \nabla f\rVert_2 / \lVert\nabla f\rVert_2` over the 33 elements, median
over the points. The numbers it prints (note section 4): the optimal central step is within a
factor 3.2 of :math:`\varepsilon^{1/3}` (float32: 2^-6 against 4.9e-3; float64: 2^-16 against
6.1e-6), the slopes are +2 (truncation) and -1 (round-off), the best error is near
:math:`\varepsilon^{2/3}`, the exponents of the optimal steps read across the two dtypes are
0.48, 0.34 and 0.21 (forward, central, Richardson; theory 1/2, 1/3, 1/5), and ``jax.grad`` in
the same dtype is 82x (float32) to 82000x (float64) more accurate than the best difference.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import gradlab
from gradlab.plot import loglog_slope, plot_convergence, pyplot, save_figure

jax.config.update("jax_enable_x64", True)

HERE = Path(__file__).resolve().parent
DERIV = gradlab.derivations.get("logistic_regression")
SHAPE = (256, 32)
KS = np.arange(0, 46)  # h = 2^-k, from 1 down to 2^-45 (below float32's resolution at |x| ~ 1)


def _cast(tree, dtype):
    return jax.tree.map(lambda a: a.astype(dtype), tree)


def error_curves(dtype, points: int) -> dict:
    """Median relative errors of forward, central and Richardson differences for every step,
    and of ``jax.grad`` in ``dtype``, against the float64 ``jax.grad`` (in float64, the hand
    gradient against it: the size of round-off in an exact formula)."""
    hs_1d = (2.0 ** -KS.astype(np.float64)).astype(dtype)
    errs = {"forward": [], "central": [], "richardson": [], "autodiff": []}
    for seed in range(points):
        args64 = DERIV.make_args(jax.random.key(seed), SHAPE, jnp.float64)
        g, _ = ravel_pytree(jax.grad(DERIV.loss)(*args64))
        g = np.asarray(g)
        args = _cast(args64, dtype)
        approx = {"forward": [], "central": [], "richardson": []}
        for h in hs_1d:  # gradlab's finite-difference witness at each step (note eqs. (2)-(5))
            fd = gradlab.check.finite_differences(DERIV.loss, *args, step=float(h))
            for name in approx:
                approx[name].append(np.asarray(ravel_pytree(getattr(fd, name))[0]))
        approx = {name: np.stack(v) for name, v in approx.items()}
        gn = np.linalg.norm(g)
        for name, a in approx.items():
            errs[name].append(np.linalg.norm(a - g[None, :], axis=1) / gn)
        if np.dtype(dtype) == np.float64:
            # The truth is itself float64 autodiff: measure it against the registered hand
            # gradient, an independent exact formula (both are off by round-off only).
            ad, _ = ravel_pytree(DERIV.grad(*args64))
        else:
            ad, _ = ravel_pytree(jax.grad(DERIV.loss)(*args))
        errs["autodiff"].append(np.linalg.norm(np.asarray(ad, np.float64) - g) / gn)
    out = {name: np.median(np.stack(v), axis=0) for name, v in errs.items()}
    out["h"] = hs_1d.astype(np.float64)
    return out


def analyse(curves: dict, dtype) -> dict:
    """Optimal steps, slopes on both sides of the central optimum, best errors."""
    eps = float(np.finfo(dtype).eps)
    h = curves["h"]
    res = {"dtype": np.dtype(dtype).name, "eps": eps}
    for name in ("forward", "central", "richardson"):
        e = curves[name]
        i = int(np.argmin(e))
        res[f"{name}_best_h"] = float(h[i])
        res[f"{name}_best_err"] = float(e[i])
    hc = res["central_best_h"]
    res["cbrt_eps"] = eps ** (1 / 3)
    res["sqrt_eps"] = eps ** (1 / 2)
    res["fifth_root_eps"] = eps ** (1 / 5)
    res["central_step_ratio"] = hc / res["cbrt_eps"]
    res["forward_step_ratio"] = res["forward_best_h"] / res["sqrt_eps"]
    trunc = (4 * hc, min(64 * hc, 0.25))  # right of the optimum, h <= 1/4 (asymptotic regime)
    round_off = (hc / 512, hc / 16)  # left of it, above the step where x + h == x
    res["slope_truncation"] = loglog_slope(h, curves["central"], *trunc)
    res["slope_roundoff"] = loglog_slope(h, curves["central"], *round_off)
    res["truncation_window"] = trunc
    res["roundoff_window"] = round_off
    res["autodiff_err"] = float(curves["autodiff"])
    res["autodiff_advantage"] = res["central_best_err"] / max(res["autodiff_err"], 1e-300)
    return res


def reproduce(quick: bool = False, out_dir: Path = HERE) -> dict:
    points = 4 if quick else 16
    out = {}
    for dtype in (jnp.float32, jnp.float64):
        curves = error_curves(dtype, points)
        out[np.dtype(dtype).name] = {"curves": curves, **analyse(curves, dtype)}
    # The exponent p of h* ~ eps^p, read off the two dtypes (note eq. (7)): 1/2, 1/3, 1/5.
    lo, hi = out["float32"], out["float64"]
    out["exponent"] = {
        name: math.log(hi[f"{name}_best_h"] / lo[f"{name}_best_h"])
        / math.log(hi["eps"] / lo["eps"])
        for name in ("forward", "central", "richardson")
    }
    out["figure"] = str(_figure(out, out_dir))
    return out


def _figure(out: dict, out_dir: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(14, 5))
    for ax, name in zip(axes, ("float32", "float64"), strict=True):
        r = out[name]
        c = r["curves"]
        h = c["h"]
        lo, hi = r["truncation_window"]
        plot_convergence(
            {
                "forward (f(x+h)-f(x))/h": (h, c["forward"]),
                "central (f(x+h)-f(x-h))/2h": (h, c["central"]),
                "Richardson (gradlab's referee)": (h, c["richardson"]),
            },
            slopes={"central (f(x+h)-f(x-h))/2h": (lo, hi)},
            marks={
                f"best central step 2^{np.log2(r['central_best_h']):.0f}": (
                    r["central_best_h"],
                    r["central_best_err"],
                )
            },
            xlabel="step h",
            ylabel=r"$\|D(h) - \nabla f\|_2 / \|\nabla f\|_2$",
            title=f"{name}: round-off slope {r['slope_roundoff']:+.2f} left of the optimum",
            ax=ax,
        )
        ax.axhline(r["autodiff_err"], color="k", lw=1, label=f"jax.grad in {name}")
        for val, lab, ls in (
            (r["sqrt_eps"], r"$\sqrt{\varepsilon}$", ":"),
            (r["cbrt_eps"], r"$\varepsilon^{1/3}$", "--"),
            (r["fifth_root_eps"], r"$\varepsilon^{1/5}$ (gradlab's step)", "-."),
        ):
            ax.axvline(val, color="0.5", ls=ls, lw=1, label=lab)
        ax.set_ylim(max(r["autodiff_err"] / 10, 1e-17), 10)
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("Finite-difference error against step size (logistic regression, 33 weights)")
    return save_figure(fig, Path(out_dir) / "fd_step.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 random points (the test's size)")
    args = ap.parse_args(argv)
    out = reproduce(args.quick)
    for name in ("float32", "float64"):
        r = out[name]
        print(f"[{name}] eps = {r['eps']:.3g}")
        print(
            f"  central: best h = 2^{np.log2(r['central_best_h']):.0f} = "
            f"{r['central_best_h']:.3g} (eps^(1/3) = {r['cbrt_eps']:.3g}, ratio "
            f"{r['central_step_ratio']:.2f}), best error {r['central_best_err']:.2e} "
            f"(eps^(2/3) = {r['eps'] ** (2 / 3):.2e})"
        )
        print(
            f"  slopes of the central error: truncation {r['slope_truncation']:+.2f}, "
            f"round-off {r['slope_roundoff']:+.2f}"
        )
        print(
            f"  forward: best h = {r['forward_best_h']:.3g} (sqrt(eps) = {r['sqrt_eps']:.3g}), "
            f"error {r['forward_best_err']:.2e}; Richardson: best h = "
            f"{r['richardson_best_h']:.3g} (eps^(1/5) = {r['fifth_root_eps']:.3g}), "
            f"error {r['richardson_best_err']:.2e}"
        )
        print(
            f"  jax.grad in {name}: error {r['autodiff_err']:.2e}, "
            f"{r['autodiff_advantage']:.0f}x below the best central difference"
        )
    e = out["exponent"]
    print(
        f"exponent p of the best step h* ~ eps^p, from float32 to float64: forward "
        f"{e['forward']:.3f} (theory 1/2), central {e['central']:.3f} (1/3), Richardson "
        f"{e['richardson']:.3f} (1/5)"
    )
    print(f"figure: {out['figure']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
