"""Checks at scale, side by side: gradlab full / fast / localization / search against torch's
``gradcheck(fast_mode=True)`` and jax's ``check_grads`` on the same loss.

The loss is ``sum(log1p(w**2))`` over N float64 parameters (in 1 or 1000 leaves); the hand
gradient is ``2w / (1 + w^2)``. Each row runs in its own subprocess so that its peak resident
memory (``ru_maxrss``) is its own; times are the first call (compiles included) and a second,
warm call. Localization: a custom JVP wrong at one element, copied by the hand gradient (fast
mode must locate it by group testing). Search: ``search_grad`` on registered derivations.

Usage::

    python benchmarks/bench_check_scale.py                 # N = 1e4, 1e5, 1e6
    python benchmarks/bench_check_scale.py --sizes 1e7     # once: ~3 GB
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import json, math, resource, sys, time
    import numpy as np
    kind, n, leaves = sys.argv[1], int(float(sys.argv[2])), int(sys.argv[3])

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def timed(f):
        t = time.perf_counter(); out = f(); return out, time.perf_counter() - t

    out = {"kind": kind, "n": n, "leaves": leaves}
    if kind == "torch":
        import torch
        x = torch.tensor(np.random.default_rng(0).normal(size=n), requires_grad=True)
        f = lambda x: torch.log1p(x ** 2).sum()
        ok, t1 = timed(lambda: torch.autograd.gradcheck(f, (x,), fast_mode=True))
        ok, t2 = timed(lambda: torch.autograd.gradcheck(f, (x,), fast_mode=True))
        out.update(ok=bool(ok), first=t1, warm=t2)
    else:
        import jax, jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        import gradlab
        rng = np.random.default_rng(0)
        size = n // max(1, leaves)
        p = {f"w{j:04d}": jnp.asarray(rng.normal(size=size)) for j in range(leaves)}
        loss = lambda p: sum(jnp.sum(jnp.log1p(w ** 2)) for w in jax.tree.leaves(p))
        grad = lambda p: jax.tree.map(lambda w: 2 * w / (1 + w ** 2), p)
        if kind in ("fast", "full"):
            run = lambda: gradlab.check_grad(loss, grad, p, mode=kind)
        elif kind == "bug1e-7":
            bad = lambda p: {**grad(p), "w0000": grad(p)["w0000"].at[size // 3].multiply(1 + 1e-7)}
            run = lambda: gradlab.check_grad(loss, bad, p, mode="fast")
        elif kind == "localize":
            from gradlab.check import _localize, _scale
            mask = jnp.zeros(n, bool).at[n // 3].set(True)
            @jax.custom_jvp
            def f(w):
                return jnp.sum(jnp.sin(w))
            @f.defjvp
            def f_jvp(pr, tg):
                return f(pr[0]), jnp.sum(jnp.where(mask, 2.0, 1.0) * jnp.cos(pr[0]) * tg[0])
            w = jnp.asarray(rng.normal(size=n))
            hand = lambda w: jnp.where(mask, 2.0, 1.0) * jnp.cos(w)
            found = []
            real = _localize.localize
            _scale._localize.localize = lambda *a, **k: found.append(real(*a, **k)) or found[-1]
            run = lambda: gradlab.check_grad(f, hand, w, mode="fast")
        elif kind == "jax":
            from jax.test_util import check_grads
            run = lambda: check_grads(loss, (p,), order=1, modes=["rev"])
        elif kind == "search":
            d = gradlab.REGISTRY[["mse_mean", "logistic_mixture_edge"][leaves]]
            sampler = lambda key: d.make_args(key, d.shapes[0], jnp.float64)
            run = lambda: gradlab.search_grad(d.loss, d.grad, sampler, n=n, argnums=d.argnums)
        r1, t1 = timed(run)
        r2, t2 = timed(run)
        out.update(first=t1, warm=t2)
        if kind == "search":
            out.update(ok=r2.ok, inputs_per_s=r2.inputs_per_second, derivation=d.name)
        elif kind == "localize":
            loc = found[-1]
            out.update(ok=r2.ok, located=list(loc.elements), evaluations=loc.evaluations,
                       bound=4 * math.log2(n),
                       failing=[v.kind.name for v in r2.verdicts if v.failing])
        elif kind != "jax":
            out.update(ok=bool(r2.ok), failing=[v.kind.name for v in r2.verdicts if v.failing])
    out["peak_rss_mb"] = peak_mb()
    print("RESULT " + json.dumps(out))
    """
)


def run(kind: str, n: float, leaves: int = 1, timeout: int = 1800) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(n), str(leaves)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"kind": kind, "n": n, "leaves": leaves, "error": (proc.stderr or proc.stdout)[-400:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1e4,1e5,1e6")
    ap.add_argument("--out", help="write the rows as JSON")
    ap.add_argument("--only", help="comma-separated kinds to run (default: all)")
    ns = ap.parse_args()
    rows = []
    for n in [float(s) for s in ns.sizes.split(",")]:
        plan = [("fast", 1), ("full", 1), ("bug1e-7", 1), ("localize", 1), ("torch", 1)]
        plan += [("jax", 1)]
        plan += [("fast", 1000)] if n >= 1e5 else []
        for kind, leaves in plan:
            if ns.only and kind not in ns.only.split(","):
                continue
            row = run(kind, n, leaves)
            rows.append(row)
            print(json.dumps(row), flush=True)
    for n, which in ((10_000, 0), (10_000, 1)):
        if ns.only and "search" not in ns.only.split(","):
            continue
        row = run("search", n, which)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if ns.out:
        with open(ns.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
