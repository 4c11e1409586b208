"""Checking derivative rules of vector functions, side by side: speed at a 256x256 Jacobian and
which planted bugs each checker catches, and what it says about them.

    python benchmarks/bench_check_vector.py [--repeats 5] [--quick]

Checkers: gradlab ``check_vjp`` / ``check_rules`` (full: every Jacobian entry; fast: 2 seeded
probes per leaf, failing blocks rerun in full), ``torch.autograd.gradcheck`` (slow and fast mode;
the same rule as the ``backward`` of an ``autograd.Function``), ``jax.test_util.check_grads``
(``modes=("rev",)``: its default ``fwd`` mode cannot run on a ``custom_vjp``). Timings are warm
(one call first, then the median of the repeats) in this one process; gradlab's first (cold) call,
which compiles, is listed apart. The rules are ``experiments/custom_rules.py`` (jax) and their
transcription to torch below; the planted bugs are the same in both.
"""

from __future__ import annotations

import argparse
import functools
import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import gradlab  # noqa: E402
from benchmarks.bench_check import machine, timed  # noqa: E402
from experiments import custom_rules as cr  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - optional peer
    torch = None

RNG = np.random.default_rng(0)


# ---- the rules in torch (same formulas, same planted bugs) --------------------------------------


def torch_tanh_layer(W, b):
    class Tanh(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = torch.tanh(W @ x + b)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return (g * (1 - y**2)) @ W

    return Tanh.apply


def torch_logsumexp(bug):
    class LSE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = torch.logsumexp(x, dim=-1)
            ctx.save_for_backward(x, y)
            return y

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            dx = g[..., None] * torch.exp(x - y[..., None])
            return -dx if bug else dx

    return LSE.apply


def torch_layer_norm(bug, subtle: bool = False):
    class LN(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, gamma, beta):
            mu = x.mean(-1, keepdim=True)
            r = torch.rsqrt(((x - mu) ** 2).mean(-1, keepdim=True) + cr.EPS_LN)
            xhat = (x - mu) * r
            ctx.save_for_backward(xhat, r, gamma)
            return gamma * xhat + beta

        @staticmethod
        def backward(ctx, g):
            xhat, r, gamma = ctx.saved_tensors
            dxhat = g * gamma
            axis = 0 if bug else -1
            dx = r * (
                dxhat
                - dxhat.mean(-1, keepdim=True)
                - xhat * (dxhat * xhat).mean(axis, keepdim=True)
            )
            if subtle:  # one entry off by a relative 1e-6
                dx = dx.clone()
                dx[5, 3] *= 1 + 1e-6
            return dx, (g * xhat).sum(0), g.sum(0)

    return LN.apply


def torch_attention(causal, block, bug):
    class Attn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k, v):
            s = (q @ k.T) / np.sqrt(q.shape[-1])
            if causal:
                s = s.masked_fill(torch.triu(torch.ones_like(s, dtype=bool), 1), -torch.inf)
            lse = torch.logsumexp(s, -1)
            o = torch.exp(s - lse[:, None]) @ v
            ctx.save_for_backward(q, k, v, o, lse)
            return o

        @staticmethod
        def backward(ctx, do):
            q, k, v, o, lse = ctx.saved_tensors
            scale = 1.0 / np.sqrt(q.shape[-1])
            dd = (do * o).sum(-1)
            dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
            for start in range(0, k.shape[0], block):
                kj, vj = k[start : start + block], v[start : start + block]
                s = (q @ kj.T) * scale
                if causal:
                    qi = torch.arange(q.shape[0])[:, None]
                    ki = start + torch.arange(kj.shape[0])[None, :]
                    s = s.masked_fill(ki > qi, -torch.inf)
                p = torch.exp(s - lse[:, None])
                dv[start : start + block] = p.T @ do
                ds = p * (do @ vj.T - dd[:, None])
                ds = ds if bug else ds * scale
                dq += ds @ kj
                dk[start : start + block] = ds.T @ q
            return dq, dk, dv

    return Attn.apply


def torch_fixed_point(bug):
    class FP(torch.autograd.Function):
        @staticmethod
        def forward(ctx, W, x):
            z = torch.zeros_like(x)
            for _ in range(cr.FIXED_POINT_ITERS):
                z = torch.tanh(z @ W.T + x)
            ctx.save_for_backward(W, z)
            return z

        @staticmethod
        def backward(ctx, g):
            W, z = ctx.saved_tensors
            s = 1 - z**2
            eye = torch.eye(W.shape[0], dtype=W.dtype)
            u = torch.stack(
                [
                    torch.linalg.solve(eye - (si[:, None] * W if bug else W.T * si[None, :]), gi)
                    for si, gi in zip(s, g, strict=True)
                ]
            )
            dx = s * u
            return dx.T @ z, dx

    return FP.apply


# ---- cases: (name, jax function, its args, argnums, torch function) -----------------------------


def subtle_layer_norm():
    """The correct layer norm whose backward has one entry of dx off by a relative 1e-6."""
    ln = cr.make_layer_norm(False)

    @jax.custom_vjp
    def layer_norm_subtle(x, gamma, beta):
        return ln(x, gamma, beta)

    def fwd(x, gamma, beta):
        return ln(x, gamma, beta), (x, gamma, beta)

    def bwd(res, g):
        dx, dgamma, dbeta = jax.vjp(ln, *res)[1](g)
        return dx.at[5, 3].multiply(1 + 1e-6), dgamma, dbeta

    layer_norm_subtle.defvjp(fwd, bwd)
    return layer_norm_subtle


def rule_cases() -> list[tuple]:
    """The detection cases, drawn from their own seed (the same data in every run)."""
    rng = np.random.default_rng(1)
    x16 = rng.normal(size=(16, 16)) * 2.0
    ln_args = (rng.normal(size=(16, 16)), 1 + 0.1 * rng.normal(size=16), 0.1 * rng.normal(size=16))
    qkv = tuple(rng.normal(size=(16, 8)) for _ in range(3))
    W, x = 0.3 * rng.normal(size=(8, 8)), rng.normal(size=(4, 8))
    q32 = tuple(a.astype(np.float32) for a in qkv)
    cases = [
        (
            "flash attention causal 16x8, float32 (correct)",
            cr.make_flash_attention(True, 4, False),
            q32,
            (0, 1, 2),
            torch_attention(True, 4, False) if torch else None,
        ),
        (
            "layer norm 16x16, dx[5, 3] off by a relative 1e-6",
            subtle_layer_norm(),
            ln_args,
            (0, 1, 2),
            torch_layer_norm(False, subtle=True) if torch else None,
        ),
    ]
    for bug in (False, True):
        tag = "planted bug" if bug else "correct"
        cases += [
            (
                f"logsumexp 16x16 ({tag})",
                cr.make_logsumexp(bug),
                (x16,),
                0,
                torch_logsumexp(bug) if torch else None,
            ),
            (
                f"layer norm 16x16 ({tag})",
                cr.make_layer_norm(bug),
                ln_args,
                (0, 1, 2),
                torch_layer_norm(bug) if torch else None,
            ),
            (
                f"flash attention causal 16x8 ({tag})",
                cr.make_flash_attention(True, 4, bug),
                qkv,
                (0, 1, 2),
                torch_attention(True, 4, bug) if torch else None,
            ),
            (
                f"flash attention 16x8 ({tag})",
                cr.make_flash_attention(False, 4, bug),
                qkv,
                (0, 1, 2),
                torch_attention(False, 4, bug) if torch else None,
            ),
            (
                f"fixed point W 8x8, x 4x8 ({tag})",
                cr.make_fixed_point(bug),
                (W, x),
                (0, 1),
                torch_fixed_point(bug) if torch else None,
            ),
        ]
    return cases


# ---- the checkers, each returning (caught, what it says) ---------------------------------


def run_gradlab(fn, args, argnums, mode):
    report = gradlab.check_rules(fn, *[jnp.asarray(a) for a in args], argnums=argnums, mode=mode)
    if report.ok:
        return False, "ok" + (" (float32 and its float64 copy)" if report.float64_copy else "")
    if not report.locations:
        return True, str(report.verdicts[0])[:80]
    loc = report.locations[0]
    where = f"d {loc.output}{list(loc.output_index)}/d {loc.input}{list(loc.input_index)}"
    return True, f"{loc.kind.value}: {where}"


def run_torch(tfn, args, argnums, fast):
    idx = argnums if isinstance(argnums, tuple) else (argnums,)
    inputs = [torch.tensor(a, requires_grad=i in idx) for i, a in enumerate(args)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok = torch.autograd.gradcheck(tfn, inputs, fast_mode=fast, raise_exception=False)
    return (not ok), ("ok" if ok else "Jacobian mismatch (no location)")


def run_check_grads_default(fn, args, argnums):
    """``check_grads`` with its default modes (fwd and rev)."""
    try:
        return run_check_grads(fn, args, argnums, ("fwd", "rev"))
    except TypeError as err:
        return False, f"cannot run: {str(err).splitlines()[0][:60]}"


def run_check_grads(fn, args, argnums, modes=("rev",)):
    idx = argnums if isinstance(argnums, tuple) else (argnums,)
    fixed = list(args)

    def f(*diff):
        full = list(fixed)
        for i, d in zip(idx, diff, strict=True):
            full[i] = d
        return fn(*full)

    try:
        check_grads(f, tuple(jnp.asarray(args[i]) for i in idx), order=1, modes=modes)
    except AssertionError:
        return True, "AssertionError (one projected number)"
    return False, "ok"


def speed(repeats: int) -> list[tuple[str, str, float]]:
    """Warm times at a 256x256 Jacobian (tanh layer and layer norm 16x16 w.r.t. x)."""
    W, b, x = RNG.normal(size=(256, 256)) / 16, RNG.normal(size=256), RNG.normal(size=256)
    Wj, bj = jnp.asarray(W), jnp.asarray(b)

    def f(x):
        return jnp.tanh(Wj @ x + bj)

    def vjp(x, ct):
        return (ct * (1 - f(x) ** 2)) @ Wj

    ln = cr.make_layer_norm(False)
    lx, lg, lb = (jnp.asarray(a) for a in (RNG.normal(size=(16, 16)), np.ones(16), np.zeros(16)))
    rows = []
    problems = {
        "tanh layer 256->256": (
            lambda mode: gradlab.check_vjp(f, vjp, jnp.asarray(x), mode=mode),
            (torch_tanh_layer(torch.tensor(W), torch.tensor(b)), (x,), 0) if torch else None,
            (lambda x: jax.vjp(f, x)[0], (x,), 0),
        ),
        "layer norm 16x16 (d x)": (
            lambda mode: gradlab.check_rules(ln, lx, lg, lb, mode=mode),
            (torch_layer_norm(False), (np.asarray(lx), np.ones(16), np.zeros(16)), 0)
            if torch
            else None,
            (ln, (np.asarray(lx), np.ones(16), np.zeros(16)), 0),
        ),
    }
    for name, (glab, tcase, jcase) in problems.items():
        for mode in ("full", "fast"):
            t0 = time.perf_counter()
            assert glab(mode).ok
            rows.append((name, f"gradlab {mode} (first call, compiles)", time.perf_counter() - t0))
            rows.append((name, f"gradlab {mode}", timed(functools.partial(glab, mode), repeats)))
        if tcase is not None:
            tfn, targs, tnums = tcase
            for fast in (False, True):
                label = f"torch gradcheck ({'fast' if fast else 'slow'})"
                t = timed(functools.partial(run_torch, tfn, targs, tnums, fast), repeats)
                rows.append((name, label, t))
        jfn, jargs, jnums = jcase
        rows.append(
            (
                name,
                "jax check_grads (rev)",
                timed(functools.partial(run_check_grads, jfn, jargs, jnums), repeats),
            )
        )
    return rows


def detection() -> list[tuple[str, dict[str, tuple[bool, str]]]]:
    out = []
    for name, fn, args, argnums, tfn in rule_cases():
        row = {
            "gradlab full": run_gradlab(fn, args, argnums, "full"),
            "gradlab fast": run_gradlab(fn, args, argnums, "fast"),
            "jax check_grads": run_check_grads(fn, args, argnums),
            "jax check_grads (default modes)": run_check_grads_default(fn, args, argnums),
        }
        if tfn is not None:
            row["torch slow"] = run_torch(tfn, args, argnums, False)
            row["torch fast"] = run_torch(tfn, args, argnums, True)
        out.append((name, row))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="timing only")
    ap.add_argument("--detection", action="store_true", help="detection only")
    a = ap.parse_args()
    print(f"machine: {machine()}")
    if not a.detection:
        print_speed(a.repeats)
    if a.quick:
        return
    print("\ndetection (x = flagged; what the checker says about the first failure):")
    for name, row in detection():
        print(f"  {name}")
        for who, (caught, says) in row.items():
            print(f"      {who:<31} {'x' if caught else '.'}  {says}")


def print_speed(repeats: int) -> None:
    print("\nspeed at a 256x256 Jacobian, float64, warm median (first calls listed apart):")
    rows = speed(repeats)
    for name, who, t in rows:
        print(f"  {name:<24} {who:<38} {t * 1e3:10.2f} ms")
    for name in dict.fromkeys(r[0] for r in rows):
        by = {who: t for n, who, t in rows if n == name}
        if "torch gradcheck (slow)" in by:
            slow = by["torch gradcheck (slow)"] / by["gradlab full"]
            print(
                f"  {name}: gradlab full is {slow:.1f}x"
                f" faster than torch slow; gradlab fast takes "
                f"{by['gradlab fast'] / by['torch gradcheck (fast)']:.2f}x torch fast's time"
            )


if __name__ == "__main__":
    main()
