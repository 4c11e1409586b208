"""Gradient checkers side by side: speed on MSE (X 256x1000, float64) and which planted bugs each
one catches.

    python benchmarks/bench_check.py [--repeats 5] [--quick] [--only gradlab] [--against DIR]

``--against DIR`` times another checkout's checker (``DIR/gradlab``, imported as a renamed copy)
beside this one, the gradlab rows interleaved call by call, and adds it to the detection table:
old against new in one process.

Peers (skipped when not installed): ``torch.autograd.gradcheck`` (slow and fast mode, the hand
gradient as the backward of an ``autograd.Function``), ``jax.test_util.check_grads`` (the hand
gradient as a ``custom_vjp``), ``scipy.optimize.check_grad`` and ``numdifftools.Gradient``. scipy
and numdifftools return numbers, not verdicts: they are counted as flagging a bug when the
difference exceeds a relative 1e-5 of the gradient's norm (scipy: 2-norm; numdifftools: largest
element), a threshold a careful user might pick (scipy's forward differences with step 1.5e-8 are
off by ~1e-7 relative on a correct gradient, so a tighter one raises false alarms). The detection
table runs the MSE cases on X 64x100 (torch's slow mode and numdifftools take minutes at
256x1000); numdifftools is skipped on the 1000-parameter cases for the same reason. gradlab and
the peers are timed warm (one call first, then the median of the repeats) in this one process.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import gradlab  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - optional peer
    torch = None
try:
    import scipy.optimize as sopt
except ImportError:  # pragma: no cover
    sopt = None
try:
    import numdifftools as nd
except ImportError:  # pragma: no cover
    nd = None
from jax.test_util import check_grads  # noqa: E402

RNG = np.random.default_rng(0)
N, D, X, Y, THETA = 0, 0, None, None, None


def set_data(n, d):
    """The MSE problem's size: X (n, d), y (n,), theta = (w (d,), b)."""
    global N, D, X, Y, THETA
    N, D = n, d
    X = RNG.normal(size=(n, d))
    Y = RNG.normal(size=n)
    THETA = RNG.normal(size=d + 1)


set_data(256, 1000)


# ---- problems: loss (jax), hand gradient in each array library -------------------------------


class Problem:
    """A loss of a flat parameter vector and a hand gradient, in jax, numpy and torch."""

    def __init__(self, name, loss_j, grad_xp, theta, bug):
        self.name, self.loss_j, self.grad_xp, self.theta, self.bug = (
            name,
            loss_j,
            grad_xp,
            theta,
            bug,
        )
        self.grad_j = lambda t: grad_xp(t, jnp)
        self.grad_np = lambda t: np.asarray(grad_xp(t, np))
        self.loss_np = lambda t: float(loss_j(jnp.asarray(t)))


class TorchXp:
    """The few array functions the hand gradients use, for torch tensors."""

    @staticmethod
    def concatenate(parts):
        return torch.cat([p.reshape(-1) if p.ndim else p.reshape(1) for p in parts])

    sign = staticmethod(lambda a: torch.sign(a))
    sum = staticmethod(lambda a: a.sum())
    where = staticmethod(lambda c, a, b: torch.where(c, a, b))

    @staticmethod
    def asarray(a, like):
        return torch.as_tensor(a, dtype=like.dtype)


def xp_of(t):
    return (
        TorchXp
        if torch is not None and isinstance(t, torch.Tensor)
        else (jnp if isinstance(t, jax.Array) else np)
    )


def data_for(xp, t):
    if xp is TorchXp:
        return torch.as_tensor(X), torch.as_tensor(Y)
    return (jnp.asarray(X), jnp.asarray(Y)) if xp is jnp else (X, Y)


def mse_loss(t):
    r = jnp.asarray(X) @ t[:-1] + t[-1] - jnp.asarray(Y)
    return jnp.dot(r, r) / N


def mse_grad(sign_b=1.0, elem_factor=None):
    def g(t, xp):
        xp = xp_of(t) if xp is not TorchXp else xp
        Xa, Ya = data_for(xp, t)
        r = Xa @ t[:-1] + t[-1] - Ya
        gw = 2.0 / N * (r @ Xa)
        if elem_factor is not None:
            gw = gw * xp.asarray(elem_factor, like=gw) if xp is TorchXp else gw * elem_factor
        return xp.concatenate(
            [
                gw,
                sign_b * 2.0 / N * xp.sum(r)[None]
                if xp is not TorchXp
                else sign_b * 2.0 / N * xp.sum(r),
            ]
        )

    return g


def l2_problem(lam, factor):
    loss = lambda t: 0.5 * jnp.sum((t - 3.0) ** 2) + lam * jnp.sum(t**2)

    def g(t, xp):
        return (t - 3.0) + factor * lam * t

    return loss, g


def abs_problem(at_zero):
    loss = lambda t: jnp.sum(jnp.abs(t))

    def g(t, xp):
        xp = xp_of(t)
        if xp is TorchXp:
            return torch.where(t == 0, torch.full_like(t, at_zero), torch.sign(t))
        return xp.where(t == 0, at_zero, xp.sign(t))

    return loss, g


def problems() -> list[Problem]:
    one = np.ones(D)
    one[17] = 1 + 1e-6
    w1000 = RNG.normal(size=1000)
    absx = np.array([0.0, 1.5, -2.0, 0.3])
    out = [
        Problem("MSE correct", mse_loss, mse_grad(), THETA, False),
        Problem("MSE: w[17] off by 1e-6 (rel)", mse_loss, mse_grad(elem_factor=one), THETA, True),
        Problem("MSE: sign of b", mse_loss, mse_grad(sign_b=-1.0), THETA, True),
    ]
    for lam in (1e-4, 1e-5):
        loss, _ = l2_problem(lam, 2.0)
        out.append(Problem(f"L2 lam={lam:g} correct", loss, l2_problem(lam, 2.0)[1], w1000, False))
        out.append(
            Problem(f"L2 lam={lam:g} factor 2 missing", loss, l2_problem(lam, 1.0)[1], w1000, True)
        )
    loss, g0 = abs_problem(0.0)
    out.append(Problem("|w| at 0: hand 0 (valid subgradient)", loss, g0, absx, False))
    loss, g15 = abs_problem(1.5)
    out.append(Problem("|w| at 0: hand 1.5 (invalid)", loss, g15, absx, True))
    return out


# ---- the checkers: each returns True when it flags the gradient as wrong ---------------------


def gradlab_check(p, mode):
    t = jnp.asarray(p.theta)
    return not gradlab.check_grad(lambda t: p.loss_j(t), p.grad_j, t, mode=mode).ok


def make_gradlab(p, mode):
    loss, grad = (lambda t: p.loss_j(t)), p.grad_j  # stable identities: compiled once
    t = jnp.asarray(p.theta)
    return lambda: not gradlab.check_grad(loss, grad, t, mode=mode).ok


def make_torch(p, fast):
    if torch is None:
        return None

    class Hand(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            ctx.save_for_backward(t)
            return torch.as_tensor(p.loss_np(t.detach().numpy()), dtype=t.dtype)

        @staticmethod
        def backward(ctx, g):
            (t,) = ctx.saved_tensors
            return g * p.grad_xp(t.detach(), TorchXp)

    t = torch.tensor(p.theta, dtype=torch.float64, requires_grad=True)

    def run():
        return not torch.autograd.gradcheck(Hand.apply, (t,), fast_mode=fast, raise_exception=False)

    return run


def make_jax_check_grads(p):
    @jax.custom_vjp
    def f(t):
        return p.loss_j(t)

    f.defvjp(lambda t: (p.loss_j(t), t), lambda t, g: (g * p.grad_j(t),))
    t = jnp.asarray(p.theta)

    def run():
        try:
            check_grads(f, (t,), order=1, modes=("rev",))
        except AssertionError:
            return True
        return False

    return run


def make_scipy(p):
    if sopt is None:
        return None

    def run():
        err = sopt.check_grad(p.loss_np, p.grad_np, p.theta)
        return err > 1e-5 * max(1.0, float(np.linalg.norm(p.grad_np(p.theta))))

    return run


def make_numdifftools(p):
    if nd is None:
        return None
    grad = nd.Gradient(p.loss_np)

    def run():
        num = grad(p.theta)
        hand = p.grad_np(p.theta)
        return float(np.max(np.abs(hand - num))) > 1e-5 * max(1.0, float(np.max(np.abs(num))))

    return run


TOOLS = {
    "gradlab full": lambda p: make_gradlab(p, "full"),
    "gradlab fast": lambda p: make_gradlab(p, "fast"),
    "torch gradcheck (slow)": lambda p: make_torch(p, False),
    "torch gradcheck (fast)": lambda p: make_torch(p, True),
    "jax check_grads": make_jax_check_grads,
    "scipy check_grad": make_scipy,
    "numdifftools Gradient": make_numdifftools,
}


def load_against(path: str):
    """Another checkout's ``gradlab``, importable beside this one as ``gradlab_against``."""
    dst = Path(tempfile.mkdtemp()) / "gradlab_against"
    shutil.copytree(Path(path) / "gradlab", dst, ignore=shutil.ignore_patterns("__pycache__"))
    for f in dst.rglob("*.py"):
        f.write_text(re.sub(r"\bgradlab(?=[.\s]|$)", "gradlab_against", f.read_text(), flags=re.M))
    sys.path.insert(0, str(dst.parent))
    return importlib.import_module("gradlab_against")


def add_against(module) -> None:
    """Rows ``gradlab full/fast (against)`` checking with ``module.check_grad``."""

    def make(p, mode):
        loss, grad = (lambda t: p.loss_j(t)), p.grad_j
        t = jnp.asarray(p.theta)
        return lambda: not module.check_grad(loss, grad, t, mode=mode).ok

    for mode in ("full", "fast"):
        TOOLS[f"gradlab {mode} (against)"] = lambda p, mode=mode: make(p, mode)


def timed_interleaved(fns: dict, repeats: int) -> dict:
    """Median times of ``fns`` called in turn, one call each per round (after one warm call)."""
    for fn in fns.values():
        fn()
    ts = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            ts[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in ts.items()}


def timed(fn, repeats):
    if repeats == 0:  # one cold call (numdifftools has nothing to warm and takes minutes)
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    fn()  # warm: compile, caches
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(
            line.split(":", 1)[1].strip()
            for line in out.splitlines()
            if line.startswith("Model name")
        )
    except Exception:  # noqa: BLE001
        model = platform.processor()
    return f"{model}, {os.cpu_count()} cores, jax {jax.__version__}" + (
        f", torch {torch.__version__}" if torch is not None else ""
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--quick", action="store_true", help="timing only, without numdifftools (minutes)"
    )
    ap.add_argument(
        "--only",
        metavar="SUBSTR",
        help="run only the checkers whose name contains SUBSTR (e.g. gradlab: old vs new)",
    )
    ap.add_argument("--against", metavar="DIR", help="also time DIR/gradlab (old vs new)")
    a = ap.parse_args()
    if a.against:
        add_against(load_against(a.against))
    if a.only:
        for name in [n for n in TOOLS if a.only not in n]:
            del TOOLS[name]
    warnings.filterwarnings("ignore")
    print(f"machine: {machine()}")
    print(
        f"timing: MSE, X {N}x{D} float64, correct hand gradient, {D + 1} parameters; warm, "
        f"median of {a.repeats} (numdifftools: one call)",
        flush=True,
    )
    probs = problems()
    base = probs[0]
    times = {}
    ours = [n for n in TOOLS if n.startswith("gradlab")]
    if a.against:  # old and new called in turn, so load changes hit both alike
        times = timed_interleaved({n: TOOLS[n](base) for n in ours}, a.repeats)
        for name in ours:
            print(f"  timed {name}: {times[name] * 1e3:.1f} ms (interleaved)", flush=True)
    for name, make in TOOLS.items():
        if name in times:
            continue
        if a.quick and name.startswith("numdifftools"):
            print(f"  {name:<24} skipped (--quick)")
            continue
        fn = make(base)
        if fn is None:
            print(f"  {name:<24} not installed, skipped")
            continue
        times[name] = timed(fn, 0 if name.startswith("numdifftools") else a.repeats)
        print(f"  timed {name}: {times[name] * 1e3:.1f} ms", flush=True)
    ref = times.get("torch gradcheck (slow)")
    ref_fast = times.get("torch gradcheck (fast)")
    print(f"\n{'checker':<24} {'time':>10}  {'vs torch slow':>13}  {'vs torch fast':>13}  reports")
    reports = {
        "gradlab full": "every element: hand, autodiff, FD (+ kinks, blame)",
        "gradlab fast": "4 random directions per leaf (JVP), localizes on failure",
        "gradlab full (against)": f"{a.against}: full",
        "gradlab fast (against)": f"{a.against}: fast",
        "torch gradcheck (slow)": "pass/fail, whole Jacobians on failure",
        "torch gradcheck (fast)": "pass/fail, one projected number",
        "jax check_grads": "pass/fail, one projected number",
        "scipy check_grad": "one float (2-norm), no threshold",
        "numdifftools Gradient": "a numerical gradient, no comparison",
    }
    for name, t in times.items():
        r1 = f"{ref / t:.1f}x faster" if ref else "-"
        r2 = f"{t / ref_fast:.2f}x its time" if ref_fast else "-"
        print(f"{name:<24} {t * 1e3:8.1f}ms  {r1:>13}  {r2:>13}  {reports[name]}")

    if a.quick:
        return
    set_data(64, 100)
    probs = problems()
    print("\ndetection (x = flags the gradient as wrong; a correct gradient must not be flagged;")
    print("MSE cases on X 64x100; '-' = skipped as too slow)", flush=True)
    names = [n for n in TOOLS if n in times]
    short = {
        n: n.replace("gradcheck ", "")
        .replace(" Gradient", "")
        .replace(" check_grad", "")
        .replace(" check_grads", "")
        for n in names
    }
    print(f"{'case':<40} " + " ".join(f"{short[n]:>14}" for n in names))
    score = dict.fromkeys(names, 0)
    for p in probs:
        cells = []
        for n in names:
            if n.startswith("numdifftools") and p.theta.size > 200:
                cells.append("-")
                continue
            flagged = TOOLS[n](p)()
            right = flagged == p.bug
            score[n] += right
            cells.append(("x" if flagged else ".") + ("" if right else " WRONG"))
        print(f"{p.name:<40} " + " ".join(f"{c:>14}" for c in cells), flush=True)
    print(f"{'right verdicts':<40} " + " ".join(f"{score[n]:>14}" for n in names))


if __name__ == "__main__":
    main()
