"""Training loop: seed 002's numpy batch GD against ``gradlab.fit`` jitted, side by side.

    python benchmarks/bench_fit.py            # full run
    python benchmarks/bench_fit.py --quick    # fewer repeats

What is timed, all in this one process, warm, median of repeats (float64 throughout):

1. Seed 002's batch GD (n=80, d=2 with the bias, 400 steps, full-data loss recorded every step)
   as the seed's own numpy loop (``batch_gd`` with ``mse_gradient`` and ``mse_cost`` verbatim),
   against ``jax.jit(lambda lr: gradlab.fit(mse_mean, ..., optax.sgd(lr), 400))``. The seed's
   ``alpha=0.05`` diverges on this data (``gradlab.stability``: the bound is 0.029), so both run
   at ``alpha=0.02``. Compile time (first call minus a warm call) is reported on its own.
2. The per-step cost inside the loop: (time at N_BIG steps - time at N_SMALL steps) /
   (N_BIG - N_SMALL), for several ``unroll`` factors and history strides.
3. Hand gradient (``mse_mean_grad``) against autodiff (``jax.grad``), as a ratio of warm times
   at N_BIG steps.
4. This code against a baseline revision (``--baseline REV``, default ``9331f39``, main before
   traced value checks) in this one process: the baseline's ``gradlab`` is exported with
   ``git archive`` into a temporary folder and imported as ``gradlab_base``. Per-step cost at
   the default configuration (record_every=1, unroll=2) and at record_every=1000, interleaved
   (old, new, old, new, ...) so that load drifts hit both alike.
5. Repeated eager ``fit`` calls with the same loss, optimizer and shapes: the first call
   (compiles) and the median of the next ones, baseline against this code.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import pathlib
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import gradlab  # noqa: E402
from gradlab.derivations.mse import mse_mean, mse_mean_grad  # noqa: E402

LR = 0.02
STEPS = 400
N_SMALL, N_BIG = 1_000, 201_000


# ---- seed 002, verbatim (sections 1-5) ------------------------------------------------------


def seed_data():
    rng = np.random.default_rng(42)
    x = np.linspace(0, 10, 80)
    noise = rng.normal(0, 1.0, size=len(x))
    y = 2.5 + 1.7 * x + noise
    return x, y


def mse_cost(X, y, theta):
    errors = X @ theta - y
    return float(np.mean(errors**2))


def mse_gradient(X, y, theta):
    n = X.shape[0]
    return (2 / n) * (X.T @ (X @ theta - y))


def batch_gd(X, y, alpha=0.05, iters=500):
    theta = np.zeros((X.shape[1], 1))
    history = []
    for _ in range(iters):
        grad = mse_gradient(X, y, theta)
        theta = theta - alpha * grad
        history.append(mse_cost(X, y, theta))
    return theta, history


# ---- timing helpers -------------------------------------------------------------------------


CLOCK = time.perf_counter  # --cpu switches to this process's CPU time (a shared machine)


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = CLOCK()
        jax.block_until_ready(fn())
        times.append(CLOCK() - t)
    return statistics.median(times)


def compile_and_warm(fn, repeats: int) -> tuple[float, float]:
    t = CLOCK()
    jax.block_until_ready(fn())
    first = CLOCK() - t
    warm = median_time(fn, repeats)
    return first - warm, warm


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln)
    except Exception:  # no lscpu: fall back to what Python knows
        name = platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores, jax {jax.__version__}, {jax.default_backend()}"


def main(quick: bool) -> None:
    reps = 5 if quick else 21
    x, y = seed_data()
    Xs = np.c_[np.ones_like(x), x]  # the seed's design matrix (bias trick)
    ys = y.reshape(-1, 1)
    X, Y = jnp.asarray(x[:, None]), jnp.asarray(y)
    p0 = {"w": jnp.zeros(1), "b": jnp.zeros(())}
    print(f"machine: {machine()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    clock = "process CPU time" if CLOCK is time.process_time else "wall time"
    print(f"clock: {clock}, median of repeats; load average {os.getloadavg()[0]:.1f}")

    # 1. seed loop vs gradlab.fit --------------------------------------------------------------
    theta, hist = batch_gd(Xs, ys, alpha=LR, iters=STEPS)
    t_seed = median_time(lambda: batch_gd(Xs, ys, alpha=LR, iters=STEPS), reps)

    lr = jnp.asarray(LR)  # an array argument, as a sweep passes it (a Python float costs a
    # host-to-device conversion per call)
    rows = []
    for unroll in (1, 2, 4):
        train = jax.jit(
            lambda lr, unroll=unroll: gradlab.fit(
                mse_mean, p0, (X, Y), optax.sgd(lr), STEPS, unroll=unroll
            )
        )
        compile_s, t_fit = compile_and_warm(lambda train=train: train(lr), max(reps, 51))
        rows.append((unroll, compile_s, t_fit))
    res = train(lr)
    err = max(
        abs(float(res.params["b"]) - theta[0, 0]),
        abs(float(res.params["w"][0]) - theta[1, 0]),
        float(np.max(np.abs(np.asarray(res.history["loss"]) - np.asarray(hist)))),
    )
    print("\n1. seed 002 batch GD, n=80, d=2, 400 steps, loss recorded every step (float64)")
    print(f"{'':38s}{'time':>12s}{'ratio':>10s}{'compile':>11s}")
    print(f"{'seed numpy loop (batch_gd)':38s}{t_seed * 1e3:10.3f}ms{1.0:10.1f}")
    for unroll, compile_s, t_fit in rows:
        label = f"gradlab.fit, jit, warm, unroll={unroll}" + (" (default)" if unroll == 2 else "")
        print(f"{label:38s}{t_fit * 1e3:10.3f}ms{t_seed / t_fit:9.1f}x{compile_s * 1e3:9.0f}ms")
    print(f"max |gradlab - seed| over params and the 400 recorded losses: {err:.1e}")

    # 2. per-step cost ------------------------------------------------------------------------
    print(f"\n2. per-step cost inside the loop: (t[{N_BIG}] - t[{N_SMALL}]) / {N_BIG - N_SMALL}")
    print(f"{'configuration':44s}{'per step':>12s}{'compile':>11s}")
    per_step = {}
    for record_every in (1, 1000):
        for unroll in (1, 2, 4, 8):
            fns = {
                n: jax.jit(
                    lambda lr, n=n, record_every=record_every, unroll=unroll: gradlab.fit(
                        mse_mean,
                        p0,
                        (X, Y),
                        optax.sgd(lr),
                        n,
                        record_every=record_every,
                        unroll=unroll,
                    )
                )
                for n in (N_SMALL, N_BIG)
            }
            c_small, t_small = compile_and_warm(lambda f=fns[N_SMALL]: f(lr), reps)
            _, t_big = compile_and_warm(lambda f=fns[N_BIG]: f(lr), max(3, reps // 3))
            us = (t_big - t_small) / (N_BIG - N_SMALL) * 1e6
            per_step[(record_every, unroll)] = us
            label = f"autodiff, record_every={record_every}, unroll={unroll}"
            print(f"{label:44s}{us:9.3f} us{c_small * 1e3:9.0f}ms")

    # 3. hand gradient vs autodiff ------------------------------------------------------------
    print(f"\n3. hand gradient vs autodiff, {N_BIG} steps, record_every=1000, unroll=8")
    times = {}
    for name, g in (("autodiff (jax.grad)", None), ("hand (mse_mean_grad)", mse_mean_grad)):
        f = jax.jit(
            lambda lr, g=g: gradlab.fit(
                mse_mean, p0, (X, Y), optax.sgd(lr), N_BIG, grad=g, record_every=1000, unroll=8
            )
        )
        _, times[name] = compile_and_warm(lambda f=f: f(lr), max(3, reps // 3))
    base = times["autodiff (jax.grad)"]
    for name, t in times.items():
        print(f"{name:34s}{t * 1e3:10.2f}ms{base / t:9.2f}x")
    best = min(per_step, key=per_step.get)
    print(f"\nbest per-step: {per_step[best]:.3f} us at record_every={best[0]}, unroll={best[1]}")


# ---- 4./5. against a baseline revision, in this process --------------------------------------


def import_baseline(rev: str):
    """The ``gradlab`` package of revision ``rev``, imported as ``gradlab_base``."""
    root = pathlib.Path(__file__).resolve().parents[1]
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="gradlab_base_"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev, "gradlab"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    (tmp / "gradlab").rename(tmp / "gradlab_base")
    pattern = re.compile(r"\b(from|import) gradlab(\.|\s)")
    for path in (tmp / "gradlab_base").rglob("*.py"):
        text = path.read_text()
        path.write_text(pattern.sub(lambda m: f"{m.group(1)} gradlab_base{m.group(2)}", text))
    sys.path.insert(0, str(tmp))
    return importlib.import_module("gradlab_base")


def per_step_pair(libs: dict, X, Y, p0, lr, record_every: int, reps: int) -> dict[str, float]:
    """Per-step cost of each library's fit, measured interleaved; us per step."""
    fns = {
        (name, n): jax.jit(
            lambda lr, lib=lib, n=n: lib.fit(
                mse_mean, p0, (X, Y), optax.sgd(lr), n, record_every=record_every
            )
        )
        for name, lib in libs.items()
        for n in (N_SMALL, N_BIG)
    }
    for f in fns.values():
        jax.block_until_ready(f(lr))  # compile everything first
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            times[k].append(median_time(lambda f=f: f(lr), 1))
    med = {k: statistics.median(t) for k, t in times.items()}
    return {
        name: (med[(name, N_BIG)] - med[(name, N_SMALL)]) / (N_BIG - N_SMALL) * 1e6 for name in libs
    }


def eager_calls(lib, X, Y, p0, repeats: int) -> tuple[float, float]:
    """First eager ``fit`` call and the median of ``repeats`` more (same objects), seconds."""
    opt = optax.sgd(LR)

    def call():
        return lib.fit(mse_mean, p0, (X, Y), opt, STEPS)

    t = CLOCK()
    jax.block_until_ready(call())
    first = CLOCK() - t
    return first, median_time(call, repeats)


def compare_baseline(rev: str, quick: bool) -> None:
    base = import_baseline(rev)
    x, y = seed_data()
    X, Y = jnp.asarray(x[:, None]), jnp.asarray(y)
    p0 = {"w": jnp.zeros(1), "b": jnp.zeros(())}
    lr = jnp.asarray(LR)
    libs = {f"baseline {rev}": base, "this code": gradlab}
    reps = 5 if quick else 15
    print(f"\n4. per-step cost, baseline {rev} against this code, interleaved, {reps} rounds")
    for record_every in (1, 1000):
        us = per_step_pair(libs, X, Y, p0, lr, record_every, reps)
        old, new = us.values()
        print(
            f"record_every={record_every:<5d} unroll=2: baseline {old:.3f} us, this code "
            f"{new:.3f} us, ratio {new / old:.3f}"
        )
    print("\n5. repeated eager fit calls (same loss, optimizer, shapes), 400 steps")
    for name, lib in libs.items():
        first, again = eager_calls(lib, X, Y, p0, 3 if quick else 9)
        print(f"{name:24s} first {first * 1e3:8.1f} ms, repeated {again * 1e3:8.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time with this process's CPU time instead of wall time (a machine shared with "
        "other jobs inflates wall time; XLA:CPU runs these tiny loops on one thread)",
    )
    parser.add_argument(
        "--baseline",
        default="9331f39",
        help="git revision to compare this code against in one process (sections 4-5)",
    )
    parser.add_argument(
        "--only-baseline", action="store_true", help="run sections 4-5 only (the comparison)"
    )
    args = parser.parse_args()
    if args.cpu:
        CLOCK = time.process_time
    if not args.only_baseline:
        main(args.quick)
    else:
        print(f"machine: {machine()}")
        print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(f"load average {os.getloadavg()[0]:.1f}")
    compare_baseline(args.baseline, args.quick)
