"""Hand gradient vs ``jax.grad(loss)`` for every registered derivation, both jitted, side by side.

    python benchmarks/bench_derivations.py            # every derivation, the sizes below
    python benchmarks/bench_derivations.py l1 mirage  # only those
    python benchmarks/bench_derivations.py --repeats 51

For each derivation: build one example at a size big enough for the arithmetic to dominate
dispatch (``BENCH_SHAPES``; ``(n, d) = (4096, 256)`` for MSE-like models, ``d = 2**20`` for the
elementwise penalties), jit both gradients, check they agree, warm them up, then time them
*interleaved* (hand, autodiff, hand, ...) so both see the same machine state, each sample
being the mean of ``inner`` calls sized to take ~20 ms. Prints the median time of each and
the ratio hand/autodiff; exits 1 when a ratio exceeds ``LIMIT`` (1.2), the issue's bound.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)

from gradlab.derivations import REGISTRY  # noqa: E402

LIMIT = 1.2

# Sizes by derivation; a derivation not listed here runs at 32x its largest test shape's first
# dimension (a shape's meaning is its module's).
BENCH_SHAPES: dict[str, tuple[int, ...]] = {
    "mse_mean": (4096, 256),
    "mse_half_mean": (4096, 256),
    "elastic_net": (4096, 256),
    "mirage": (4096, 256),
    "mirage_maxent": (4096, 256),
    "logistic_regression": (4096, 256),
    "l1": (2**20,),
    "l2_half": (2**20,),
    "l2_full": (2**20,),
    "entropy": (2**20,),
}


def bench_shape(name: str) -> tuple[int, ...]:
    if name in BENCH_SHAPES:
        return BENCH_SHAPES[name]
    largest = max(REGISTRY[name].shapes, key=lambda s: s[0])
    return (32 * largest[0], *largest[1:])


def _block(tree):
    return jax.tree.map(lambda a: a.block_until_ready(), tree)


def _sample(fn, args, inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        out = fn(*args)
    _block(out)
    return (time.perf_counter() - start) / inner


def time_pair(hand, auto, args, repeats: int) -> tuple[float, float]:
    """Median seconds per call of ``hand`` and ``auto``, sampled alternately."""
    for _ in range(3):
        _block(hand(*args))
        _block(auto(*args))
    one = max(_sample(hand, args, 1), _sample(auto, args, 1), 1e-7)
    inner = max(1, min(1000, int(0.02 / one)))
    ts_hand, ts_auto = [], []
    for _ in range(repeats):
        ts_hand.append(_sample(hand, args, inner))
        ts_auto.append(_sample(auto, args, inner))
    return statistics.median(ts_hand), statistics.median(ts_auto)


def run(names: list[str], repeats: int, dtype) -> list[dict]:
    rows = []
    for name in names:
        d = REGISTRY[name]
        shape = bench_shape(name)
        args = d.make_args(jax.random.key(0), shape, dtype)
        # Run once eagerly: the value checks (finite, >= 0, ...) run on the concrete example and
        # the two gradients must agree before their speed means anything.
        hand_fn = jax.jit(d.grad)
        auto_fn = jax.jit(jax.grad(d.loss, d.argnums))
        d.grad(*args)
        err = max(
            float(jnp.max(jnp.abs(h - a)) / (jnp.max(jnp.abs(a)) + 1e-300))
            for h, a in zip(
                jax.tree.leaves(hand_fn(*args)), jax.tree.leaves(auto_fn(*args)), strict=True
            )
        )
        t_hand, t_auto = time_pair(hand_fn, auto_fn, args, repeats)
        rows.append(
            {
                "name": name,
                "shape": shape,
                "hand_us": 1e6 * t_hand,
                "auto_us": 1e6 * t_auto,
                "ratio": t_hand / t_auto,
                "rel_err": err,
            }
        )
        r = rows[-1]
        print(
            f"{name:28s} {'x'.join(map(str, shape)):>10s} {r['hand_us']:11.1f} "
            f"{r['auto_us']:11.1f} {r['ratio']:7.3f} {r['rel_err']:9.1e}",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="derivations to time (default: all)")
    parser.add_argument("--repeats", type=int, default=31, help="samples per gradient")
    parser.add_argument("--float32", action="store_true", help="time in float32")
    args = parser.parse_args(argv)
    names = args.names or list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(f"unknown derivation(s) {unknown}; registered: {sorted(REGISTRY)}", file=sys.stderr)
        return 2
    dtype = jnp.float32 if args.float32 else jnp.float64
    print(
        f"# hand gradient vs jax.grad, both jitted; {jnp.dtype(dtype).name}, median of "
        f"{args.repeats}; jax {jax.__version__}, {jax.devices()[0].platform}, "
        f"{platform.processor() or platform.machine()}"
    )
    print(
        f"{'derivation':28s} {'shape':>10s} {'hand us':>11s} {'jax.grad us':>11s} "
        f"{'ratio':>7s} {'rel err':>9s}"
    )
    rows = run(names, args.repeats, dtype)
    worst = max(rows, key=lambda r: r["ratio"])
    ok = worst["ratio"] <= LIMIT
    print(
        f"# worst ratio {worst['ratio']:.3f} ({worst['name']}); "
        f"{'all' if ok else 'NOT all'} <= {LIMIT}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
