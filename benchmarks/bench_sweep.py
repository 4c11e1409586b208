"""Sweeps: 1024 learning rates x 500 full-batch GD steps on MSE, five ways, side by side.

    python benchmarks/bench_sweep.py            # the issue's sizes (minutes on 2 cores)
    python benchmarks/bench_sweep.py --quick    # 128 lrs x 100 steps, n=2000: a smoke run
    python benchmarks/bench_sweep.py --against HEAD~1   # this tree against a commit, one run

Problem (float32): X 10000 x 64 standard normal, y = X w* + noise, J = (1/n)||Xw - y||^2,
w0 = 0, learning rates logspace(-4, log10(0.8), L) (all below 2/lambda_max ~ 0.86: no lane
diverges, so no inf/NaN arithmetic), the loss recorded at every step. All in this one process,
warm (compiled before timing), median of repeats:

  (a) numpy loop over learning rates (seed 002's ``batch_gd`` shape): time 16 lrs, extrapolate;
      also with one BLAS thread (threadpoolctl, when installed); ratios use the faster of the two
  (b) a Python loop of one ``jax.jit`` run per lr (``lax.scan``): time 16 lrs, extrapolate
  (c) ``optax.inject_hyperparams(optax.sgd)`` with ``jax.grad``, ``jit(vmap)`` over the lrs
  (d) ``gradlab.sweep`` data path: ``sweep_quadratic(..., path="data")``, 4nd flops per
      configuration-step (``X @ w`` and ``r @ X``; under vmap two matrix products)
  (e) ``gradlab.sweep`` Gram path: ``sweep_quadratic(...)``, 2d^2 flops per configuration-step

plus the machine's ceiling measured in the same run: the flop/s of a 2048^3 float32 ``jnp``
matmul (and, on a GPU, at "tensorfloat32", and the HBM bandwidth of a jnp copy). The data path
is reported as a fraction of that ceiling (4 n d flops per configuration-step). Targets (issue
8): on CPU (d) >= 4x (a) and >= 65% of the ceiling, (e) >= 50x (d). On a GPU the data path runs
at 1024, 16384 and 65536 learning rates (``--gpu-lanes``) and is compared with the bandwidth
ceiling, assuming it moves 12 n bytes per configuration-step (writes R = XW, reads it for the
loss and for R X); the CPU rows of RESULTS.md give the crossover.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

try:
    from gradlab.sweeps import quadratic_train, sweep
except ModuleNotFoundError:  # before the subpackage was renamed (issue 16)
    from gradlab.sweep import quadratic_train, sweep


def timeit(fn, repeats: int) -> float:
    """Median wall time of ``repeats`` warm calls (``fn`` blocks until its result is ready)."""
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def matmul_ceiling(precision: str, size: int = 2048, repeats: int = 5) -> float:
    a = jax.random.normal(jax.random.key(7), (size, size), jnp.float32)
    with jax.default_matmul_precision(precision):
        f = jax.jit(lambda m: m @ m)
        t = timeit(lambda: f(a).block_until_ready(), repeats)
    return 2 * size**3 / t


def copy_bandwidth(repeats: int = 5) -> float:
    """Bytes/s of ``x + 1`` over 1 GiB of float32 (reads and writes it: 2 GiB moved)."""
    x = jnp.zeros(2**28, jnp.float32)
    f = jax.jit(lambda v: v + 1.0)
    t = timeit(lambda: f(x).block_until_ready(), repeats)
    return 2 * x.nbytes / t


def problem(n: int, d: int, lanes: int):
    kx, kw, ke = jax.random.split(jax.random.key(0), 3)
    X = jax.random.normal(kx, (n, d), jnp.float32)
    y = X @ jax.random.normal(kw, (d,), jnp.float32) + 0.1 * jax.random.normal(ke, (n,))
    lrs = np.logspace(-4, np.log10(0.8), lanes).astype(np.float32)
    return X, y.astype(jnp.float32), lrs


def numpy_loop(X, y, lrs, steps):
    """(a): seed 002's batch_gd per learning rate, float32, loss recorded every step."""
    n = X.shape[0]
    out = []
    for lr in lrs:
        w = np.zeros(X.shape[1], np.float32)
        hist = np.empty(steps, np.float32)
        for t in range(steps):
            r = X @ w - y
            w = w - lr * (np.float32(2 / n) * (r @ X))
            r = X @ w - y
            hist[t] = r @ r / n
        out.append(hist)
    return out


def one_run(X, y, steps):
    """(b) and the lane of (c): GD with the loss after each step, as ``lax.scan``."""
    n = X.shape[0]

    def run(lr):
        def step(carry, _):
            w, r = carry
            w = w - lr * ((2.0 / n) * (r @ X))
            r = X @ w - y
            return (w, r), r @ r / n

        (w, _), hist = lax.scan(
            step, (jnp.zeros(X.shape[1]), X @ jnp.zeros(X.shape[1]) - y), None, length=steps
        )
        return w, hist

    return run


def optax_vmapped(X, y, steps):
    """(c): ``inject_hyperparams(sgd)`` and ``jax.grad`` of the MSE, vmapped over lrs."""
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)

    def loss(w):
        r = X @ w - y
        return r @ r / X.shape[0]

    def run(lr):
        w0 = jnp.zeros(X.shape[1])
        state = opt.init(w0)
        state.hyperparams["learning_rate"] = lr

        def step(carry, _):
            w, s = carry
            g = jax.grad(loss)(w)
            u, s = opt.update(g, s, w)
            w = optax.apply_updates(w, u)
            return (w, s), loss(w)

        (w, _), hist = lax.scan(step, (w0, state), None, length=steps)
        return w, hist

    return jax.jit(jax.vmap(run))


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln)
    except (OSError, StopIteration):
        name = platform.processor() or "unknown CPU"
    dev = jax.devices()[0]
    kind = dev.device_kind if dev.platform != "cpu" else f"{name}, {jax.local_device_count()} dev"
    return f"{platform.machine()} {name}; jax {jax.__version__} on {dev.platform} ({kind})"


# ---- this tree against a commit (--against REF) -----------------------------------------------

# Timed in a child process per tree (two gradlab versions cannot share a process); the trees
# alternate round by round so both see the same machine load. Per child, warm timings of: the
# data and Gram paths at 256 lrs x 200 steps (n=4000, d=64) (the data path also with the
# progress bar, which since issue 15 calls the host after each lane block), the Gram path with
# a checkpoint written to a fresh folder each call, and a 4-configuration sweep of a trivial
# train (the fixed cost of one sweep() call: probe, plan, fingerprint, dispatch).
_CHILD = """
import json, statistics, sys, tempfile, time
import jax, jax.numpy as jnp, numpy as np
try:
    from gradlab.sweeps import quadratic_train, sweep
except ModuleNotFoundError:
    from gradlab.sweep import quadratic_train, sweep
def med(f, k):
    f(); ts = []
    for _ in range(k):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return ts
kx, kw = jax.random.split(jax.random.key(0))
X = jax.random.normal(kx, (4000, 64), jnp.float32)
y = X @ jax.random.normal(kw, (64,), jnp.float32)
grid = {"lr": np.logspace(-4, np.log10(0.8), 256).astype(np.float32)}
data, gram = quadratic_train(X, y, 200, path="data"), quadratic_train(X, y, 200)
tiny = lambda hp, key: {"loss": hp["lr"] * 2.0}
root = tempfile.mkdtemp()
n = iter(range(10**6))
out = {
    "data path": med(lambda: sweep(data, grid, progress=False), 5),
    "data path, progress bar shown": med(lambda: sweep(data, grid, progress=True), 5),
    "Gram path": med(lambda: sweep(gram, grid, progress=False), 9),
    "Gram path, checkpointed": med(
        lambda: sweep(gram, grid, progress=False, checkpoint=f"{root}/{next(n)}"), 9),
    "one tiny sweep() call": med(lambda: sweep(tiny, {"lr": [0.1, 0.2, 0.3, 0.4]},
                                               progress=False), 21),
}
print(json.dumps(out))
"""


def against(ref: str, rounds: int) -> None:
    import json
    import os
    import sys
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    old = Path(tempfile.mkdtemp()) / "tree"
    old.mkdir()
    sha = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    archive = subprocess.run(["git", "archive", ref], cwd=root, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    trees = {"this tree": root, f"{ref} ({sha})": old}
    times: dict[str, dict[str, list[float]]] = {k: {} for k in trees}
    print(f"machine: {machine()}")
    print(f"load average at start: {open('/proc/loadavg').read().split()[:3]}")
    for r in range(rounds):
        for name, tree in trees.items() if r % 2 == 0 else reversed(trees.items()):
            env = dict(os.environ, PYTHONPATH=str(tree))
            res = subprocess.run(
                [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, cwd=tree
            )
            if res.returncode:
                raise RuntimeError(f"{name}: {res.stderr[-2000:]}")
            for k, ts in json.loads(res.stdout.strip().splitlines()[-1]).items():
                times[name].setdefault(k, []).extend(ts)
    new, base = list(trees)
    print(f"\n{rounds} alternating rounds; seconds: min (the least disturbed run) and median")
    print(f"{'':32s} {new + ' min':>15s} {base + ' min':>22s} {'ratio':>6s} {'median ratio':>13s}")
    for k in times[new]:
        a, b = min(times[new][k]), min(times[base][k])
        ma, mb = statistics.median(times[new][k]), statistics.median(times[base][k])
        print(f"{k:32s} {a:15.4f} {b:22.4f} {a / b:6.2f} {ma / mb:13.2f}")
    print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--gpu-lanes", default="1024,16384,65536")
    ap.add_argument("--against", metavar="REF", help="time this tree against git REF instead")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds for --against")
    args = ap.parse_args()
    if args.against:
        return against(args.against, args.rounds)
    n, d, lanes, steps, sub = (2000, 64, 128, 100, 4) if args.quick else (10000, 64, 1024, 500, 16)
    reps = args.repeats
    gpu = jax.default_backend() == "gpu"
    print(f"machine: {machine()}")
    print(f"load average at start: {open('/proc/loadavg').read().split()[:3]}")
    print(f"problem: n={n} d={d} lanes={lanes} steps={steps} float32, loss every step")

    ceil = matmul_ceiling("highest")
    print(f"float32 matmul ceiling (2048^3, highest): {ceil / 1e9:.1f} GFLOP/s")
    if gpu:
        print(f"  tensorfloat32 ceiling: {matmul_ceiling('tensorfloat32') / 1e9:.1f} GFLOP/s")
        bw = copy_bandwidth()
        print(f"  copy bandwidth: {bw / 1e9:.1f} GB/s")

    X, y, lrs = problem(n, d, lanes)
    Xn, yn = np.asarray(X), np.asarray(y)
    rows = {}

    def record(name, t, note):
        rows[name] = (t, note)
        print(f"  measured {name}: {t:.3f} s ({note})", flush=True)

    t = timeit(lambda: numpy_loop(Xn, yn, lrs[:sub], steps), max(1, reps - 1))
    record("(a) numpy loop over lrs", t * lanes / sub, f"{sub} lrs timed, x{lanes // sub}")
    try:  # numpy's BLAS threads help little on GEMVs and suffer on a busy machine: time 1 too
        from threadpoolctl import threadpool_limits
    except ModuleNotFoundError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(1):
            t1 = timeit(lambda: numpy_loop(Xn, yn, lrs[:sub], steps), max(1, reps - 1))
        record("(a1) numpy loop, 1 BLAS thread", t1 * lanes / sub, f"{sub} lrs, x{lanes // sub}")

    run1 = jax.jit(one_run(X, y, steps))
    t = timeit(lambda: [run1(jnp.float32(lr))[1].block_until_ready() for lr in lrs[:sub]], reps)
    record("(b) loop of jitted runs", t * lanes / sub, f"{sub} lrs timed, x{lanes // sub}")

    f_c = optax_vmapped(X, y, steps)
    t = timeit(lambda: f_c(jnp.asarray(lrs))[1].block_until_ready(), reps)
    record("(c) optax inject_hyperparams vmap", t, "all lrs")

    data_train = quadratic_train(X, y, steps, path="data")
    gram_train = quadratic_train(X, y, steps, path="gram")
    grid = {"lr": lrs}
    res = {}

    def run_sweep(train, key):
        res[key] = sweep(train, grid, progress=False)

    t_data = timeit(lambda: run_sweep(data_train, "data"), reps)
    record("(d) gradlab.sweep data path", t_data, "all lrs")
    t_gram = timeit(lambda: run_sweep(gram_train, "gram"), max(reps, 5))
    record("(e) gradlab.sweep Gram path", t_gram, "all lrs")

    # the paths agree (float32 rounding of eq. (3) of _gram)
    hd, hg = res["data"].history["loss"], res["gram"].history["loss"]
    rel = float(np.max(np.abs(hd - hg) / np.maximum(np.abs(hd), 1e-30)))
    base = min(rows[k][0] for k in rows if k.startswith("(a"))  # the faster numpy loop
    cfg_steps = lanes * steps
    print(
        f"\n{'method':38s} {f'time {lanes}x{steps} (s)':>18s} {'config-steps/s':>15s} "
        f"{'vs numpy':>9s}  note"
    )
    for name, (t, note) in rows.items():
        print(f"{name:38s} {t:18.3f} {cfg_steps / t:15.3e} {base / t:9.1f}x  {note}")
    flops = 4 * n * d * cfg_steps
    frac = flops / t_data / ceil
    print(
        f"\ndata path: {flops / t_data / 1e9:.1f} GFLOP/s = {frac:.0%} of the matmul ceiling "
        f"(target >= 65%); vs numpy loop {base / t_data:.1f}x (target >= 4x)"
    )
    print(
        f"Gram path vs data path: {t_data / t_gram:.1f}x (target >= 50x); "
        f"max relative loss difference {rel:.1e}"
    )

    if gpu:
        for L in [int(s) for s in args.gpu_lanes.split(",")]:
            _, _, lrs_l = problem(n, d, L)
            for prec in ("highest", "tensorfloat32"):
                t = timeit(
                    lambda lrs_l=lrs_l, prec=prec: sweep(
                        data_train, {"lr": lrs_l}, progress=False, precision=prec
                    ),
                    reps,
                )
                moved = 12 * n * L * steps / t
                gf = 4 * n * d * L * steps / t / 1e9
                print(
                    f"GPU data path L={L} {prec}: {t:.3f} s, {gf:.0f} GFLOP/s, "
                    f"~{moved / 1e9:.0f} GB/s = {moved / bw:.0%} of copy bandwidth"
                )
            t = timeit(lambda lrs_l=lrs_l: sweep(gram_train, {"lr": lrs_l}, progress=False), reps)
            print(f"GPU Gram path L={L}: {t:.4f} s")
    print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
