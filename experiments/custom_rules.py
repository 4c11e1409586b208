r"""Four real custom derivative rules, checked by gradlab, each with a planted bug caught and named.

Command (quick: ~3 min on the shared 2-core machine, most of it compilation)::

    python -m experiments.custom_rules            # full size
    python -m experiments.custom_rules --quick    # the CI size

The rules (each a factory ``make_*(bug=False)``; ``bug=True`` plants the bug named below):

1. ``logsumexp`` (``custom_jvp``): :math:`y = m + \log\sum_j e^{x_j - m}`, :math:`m = \max_j x_j`,
   with the JVP :math:`\dot y = \sum_j p_j \dot x_j`, :math:`p = e^{x - y}` (the softmax).
   Planted: the wrong sign, :math:`\dot y = -\sum_j p_j \dot x_j`.
2. ``layer_norm`` (``custom_vjp``): :math:`\hat x = (x - \mu)\,r`, :math:`r = (\sigma^2 +
   \epsilon)^{-1/2}` over the last axis, :math:`y = \gamma\hat x + \beta`. Backward, with
   :math:`\bar{\hat x} = \gamma \bar y`:

   .. math::  \bar x = r\,\bigl(\bar{\hat x} - \mathrm{mean}(\bar{\hat x})
              - \hat x\,\mathrm{mean}(\bar{\hat x}\hat x)\bigr),\quad
              \bar\gamma = \textstyle\sum_b \bar y\,\hat x,\quad \bar\beta = \sum_b \bar y

   Planted: a transposed factor, :math:`\mathrm{mean}(\bar{\hat x}\hat x)` taken over the batch
   axis instead of the feature axis.
3. ``flash_attention`` (``custom_vjp``): :math:`O = \mathrm{softmax}(s\,QK^\top + M)V`,
   :math:`s = d^{-1/2}`, :math:`M` the causal mask or 0, computed over key blocks with the online
   softmax; it saves :math:`L = \mathrm{logsumexp}` per row. The backward recomputes
   :math:`P = e^{sQK_b^\top + M - L}` per block:

   .. math::  \bar V_b = P^\top\bar O,\quad \bar P = \bar O V_b^\top,\quad
              \mathrm{d}S = P \odot (\bar P - D)\,s,\quad D = \mathrm{rowsum}(\bar O\odot O),
              \quad \bar Q \mathrel{+}= \mathrm{d}S\,K_b,\quad \bar K_b = \mathrm{d}S^\top Q

   Planted: the scale :math:`s` missing from :math:`\mathrm dS` (wrong :math:`\bar Q`,
   :math:`\bar K`; :math:`\bar V` right).
4. ``fixed_point`` (``custom_vjp``): :math:`z^\star = \tanh(W z^\star + x)` per row (a
   contraction: :math:`\lVert W\rVert < 1`), solved by iteration. With :math:`s = 1 - z^{\star 2}`
   the implicit function theorem gives the adjoint equation and the gradients

   .. math::  (I - W^\top \mathrm{diag}(s))\,u = \bar z,\qquad \bar x = s\odot u,\qquad
              \bar W = \textstyle\sum_b (s\odot u)\,z^{\star\top}

   Planted: the adjoint solved with the wrong transpose, :math:`(I - \mathrm{diag}(s) W)u = \bar z`.

``model`` uses all four (layer norm, attention, fixed-point layer, logsumexp loss); the run
audits it with each bug planted and checks that exactly the planted rule is named.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

NAME = "custom_rules"
RULES = ("logsumexp", "layer_norm", "flash_attention", "fixed_point")


# ---- 1. logsumexp (custom_jvp) ------------------------------------------------------------------


@functools.cache
def make_logsumexp(bug: bool = False):
    """A stable logsumexp over the last axis with a custom_jvp (``bug``: the wrong sign)."""

    @jax.custom_jvp
    def logsumexp(x):
        m = jnp.max(x, axis=-1)
        return m + jnp.log(jnp.sum(jnp.exp(x - m[..., None]), axis=-1))

    @logsumexp.defjvp
    def logsumexp_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        y = logsumexp(x)
        p = jnp.exp(x - y[..., None])  # the softmax
        dy = jnp.sum(p * t, axis=-1)
        return y, (-dy if bug else dy)

    return logsumexp


def softmax(x, bug: bool = False):
    """``exp(x - logsumexp(x))``: its derivative goes through the logsumexp rule."""
    return jnp.exp(x - make_logsumexp(bug)(x)[..., None])


# ---- 2. layer norm (custom_vjp) -----------------------------------------------------------------

EPS_LN = 1e-5


@functools.cache
def make_layer_norm(bug: bool = False):
    """Layer norm over the last axis with a hand backward (``bug``: a transposed factor)."""

    @jax.custom_vjp
    def layer_norm(x, gamma, beta):
        return _ln_forward(x, gamma, beta)[0]

    def layer_norm_fwd(x, gamma, beta):
        y, xhat, r = _ln_forward(x, gamma, beta)
        return y, (xhat, r, gamma)

    def layer_norm_bwd(res, g):
        xhat, r, gamma = res
        dxhat = g * gamma[None, :]
        axis = 0 if bug else -1  # the bug: the factor reduced over the transposed axis
        dx = r * (
            dxhat
            - jnp.mean(dxhat, axis=-1, keepdims=True)
            - xhat * jnp.mean(dxhat * xhat, axis=axis, keepdims=True)
        )
        return dx, jnp.sum(g * xhat, axis=0), jnp.sum(g, axis=0)

    layer_norm.defvjp(layer_norm_fwd, layer_norm_bwd)
    return layer_norm


def _ln_forward(x, gamma, beta):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
    r = jax.lax.rsqrt(var + EPS_LN)
    xhat = (x - mu) * r
    return gamma[None, :] * xhat + beta[None, :], xhat, r


# ---- 3. blocked ("flash") attention (custom_vjp) ------------------------------------------


def _masked_scores(q, kb, start, causal: bool, scale):
    s = (q @ kb.T) * scale
    if causal:
        qi = jnp.arange(q.shape[0])[:, None]
        ki = start + jnp.arange(kb.shape[0])[None, :]
        s = jnp.where(ki <= qi, s, -jnp.inf)
    return s


def _flash_forward(q, k, v, causal: bool, block: int):
    """Online softmax over key blocks: returns ``O`` and the row logsumexp ``L``."""
    n, d = q.shape
    scale = float(1.0 / np.sqrt(d))
    kb, vb = k.reshape(-1, block, d), v.reshape(-1, block, v.shape[-1])
    starts = jnp.arange(kb.shape[0]) * block

    def step(carry, blk):
        m, l, acc = carry
        kj, vj, start = blk
        s = _masked_scores(q, kj, start, causal, scale)
        m_new = jnp.maximum(m, jnp.max(s, axis=-1))
        safe = jnp.where(jnp.isfinite(m_new), m_new, 0.0)
        p = jnp.exp(s - safe[:, None])
        alpha = jnp.exp(jnp.where(jnp.isfinite(m), m - safe, -jnp.inf))
        return (m_new, alpha * l + p.sum(-1), alpha[:, None] * acc + p @ vj), None

    init = (
        jnp.full(n, -jnp.inf, q.dtype),
        jnp.zeros(n, q.dtype),
        jnp.zeros((n, v.shape[-1]), q.dtype),
    )
    (m, l, acc), _ = jax.lax.scan(step, init, (kb, vb, starts))
    return acc / l[:, None], m + jnp.log(l)


@functools.cache
def make_flash_attention(causal: bool = False, block: int = 4, bug: bool = False):
    """Blocked attention with a hand backward recomputing softmax blockwise (``bug``: the scale
    missing from dS)."""

    @jax.custom_vjp
    def flash_attention(q, k, v):
        return _flash_forward(q, k, v, causal, block)[0]

    def flash_attention_fwd(q, k, v):
        o, lse = _flash_forward(q, k, v, causal, block)
        return o, (q, k, v, o, lse)

    def flash_attention_bwd(res, do):
        q, k, v, o, lse = res
        d = q.shape[-1]
        scale = float(1.0 / np.sqrt(d))
        kb, vb = k.reshape(-1, block, d), v.reshape(-1, block, v.shape[-1])
        starts = jnp.arange(kb.shape[0]) * block
        dd = jnp.sum(do * o, axis=-1)  # D = rowsum(dO * O)

        def step(dq, blk):
            kj, vj, start = blk
            p = jnp.exp(_masked_scores(q, kj, start, causal, scale) - lse[:, None])
            dv = p.T @ do
            dp = do @ vj.T
            ds = p * (dp - dd[:, None])
            ds = ds if bug else ds * scale  # the bug: the scale missing from dS
            return dq + ds @ kj, (ds.T @ q, dv)

        dq, (dk, dv) = jax.lax.scan(step, jnp.zeros_like(q), (kb, vb, starts))
        return dq, dk.reshape(k.shape), dv.reshape(v.shape)

    flash_attention.defvjp(flash_attention_fwd, flash_attention_bwd)
    return flash_attention


def attention(q, k, v, causal: bool = False):
    """Plain attention, the reference whose autodiff the blocked one is checked against."""
    scale = float(1.0 / np.sqrt(q.shape[-1]))
    s = (q @ k.T) * scale
    if causal:
        n, m = s.shape
        s = jnp.where(jnp.arange(m)[None, :] <= jnp.arange(n)[:, None], s, -jnp.inf)
    return jax.nn.softmax(s, axis=-1) @ v


# ---- 4. fixed-point (implicit) layer (custom_vjp) ------------------------------------------

FIXED_POINT_ITERS = 80


def _iterate(W, x):
    """``z = tanh(z W^T + x)`` iterated from 0 (rows are independent)."""
    return jax.lax.fori_loop(
        0, FIXED_POINT_ITERS, lambda _, z: jnp.tanh(z @ W.T + x), jnp.zeros_like(x)
    )


@functools.cache
def make_fixed_point(bug: bool = False):
    """An implicit layer whose backward solves the adjoint equation (``bug``: the wrong
    transpose)."""

    @jax.custom_vjp
    def fixed_point(W, x):
        return _iterate(W, x)

    def fixed_point_fwd(W, x):
        z = _iterate(W, x)
        return z, (W, z)

    def fixed_point_bwd(res, g):
        W, z = res
        s = 1.0 - z**2
        eye = jnp.eye(W.shape[0], dtype=W.dtype)

        def solve(s_row, g_row):
            # (I - W^T diag(s)) u = g; the bug: (I - diag(s) W) u = g
            a = eye - (s_row[:, None] * W if bug else W.T * s_row[None, :])
            return jnp.linalg.solve(a, g_row)

        u = jax.vmap(solve)(s, g)
        dx = s * u
        return dx.T @ z, dx

    fixed_point.defvjp(fixed_point_fwd, fixed_point_bwd)
    return fixed_point


# ---- the model using all four ------------------------------------------------------------------


def init(key, n: int = 8, d: int = 4, dtype=jnp.float64):
    """Parameters and a batch for :func:`model` (``n`` tokens of width ``d``)."""
    ks = jax.random.split(key, 8)
    w = lambda k, shape, s: (s * jax.random.normal(k, shape)).astype(dtype)  # noqa: E731
    params = {
        "gamma": (1.0 + 0.1 * jax.random.normal(ks[0], (d,))).astype(dtype),
        "beta": w(ks[1], (d,), 0.1),
        "wq": w(ks[2], (d, d), 0.5),
        "wk": w(ks[3], (d, d), 0.5),
        "wv": w(ks[4], (d, d), 0.5),
        "w_fp": w(ks[5], (d, d), 0.3 / np.sqrt(d)),
        "w_out": w(ks[6], (d, 3), 0.5),
    }
    x = jax.random.normal(ks[7], (n, d)).astype(dtype)
    labels = jnp.arange(n) % 3
    return params, x, labels


def model(params, x, labels, bug: str | tuple[str, ...] | None = None, block: int = 4):
    """Cross-entropy of a one-layer model: layer norm, causal blocked attention, a fixed-point
    layer, logsumexp loss. ``bug`` names the rule(s) whose bug is planted (or None)."""
    planted = (bug,) if isinstance(bug, str) else tuple(bug or ())
    unknown = set(planted) - set(RULES)
    if unknown:
        raise ValueError(f"bug must name rules among {RULES}; got {sorted(unknown)}")
    ln = make_layer_norm("layer_norm" in planted)
    attn = make_flash_attention(True, block, "flash_attention" in planted)
    fp = make_fixed_point("fixed_point" in planted)
    lse = make_logsumexp("logsumexp" in planted)
    h = ln(x, params["gamma"], params["beta"])
    a = attn(h @ params["wq"], h @ params["wk"], h @ params["wv"])
    z = fp(params["w_fp"], a + h)
    logits = z @ params["w_out"]
    picked = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    return jnp.mean(lse(logits) - picked)


# ---- the experiment ---------------------------------------------------------------------------


def alone_cases(bug: bool, n: int, d: int):
    """``(label, rule, args, argnums, reference)`` per rule, each checked on its own; attention
    against plain attention's autodiff, causal and not."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, d))
    qkv = tuple(rng.normal(size=(n, d)) for _ in range(3))
    W = 0.3 * rng.normal(size=(d, d)) / np.sqrt(d)
    out = [
        ("logsumexp", make_logsumexp(bug), (3.0 * x,), 0, None),
        ("layer_norm", make_layer_norm(bug), (x, 1 + 0.1 * x[0], 0.1 * x[1]), (0, 1, 2), None),
        ("fixed_point", make_fixed_point(bug), (W, x), (0, 1), None),
    ]
    for causal in (False, True):
        ref = functools.partial(attention, causal=causal)
        label = f"flash_attention ({'causal' if causal else 'not causal'})"
        out.append((label, make_flash_attention(causal, 4, bug), qkv, (0, 1, 2), ref))
    return out


def check_alone(n: int, d: int) -> tuple[dict, list[str]]:
    """Each rule alone, correct and planted, in float64 and float32 (beside its float64 copy)."""
    import gradlab

    results, lines = {}, []
    for bug in (False, True):
        for label, fn, args, argnums, ref in alone_cases(bug, n, d):
            for dtype in (jnp.float64, jnp.float32):
                cast = tuple(jnp.asarray(a, dtype) for a in args)
                report = gradlab.check_rules(fn, *cast, argnums=argnums, reference=ref, mode="full")
                key = f"{label}, {'planted' if bug else 'correct'}, {jnp.dtype(dtype).name}"
                locs = [str(loc) for loc in report.locations]
                results[key] = {"ok": report.ok, "first": locs[0] if locs else ""}
                lines += [f"== {key}", str(report), ""]
    return results, lines


def run(quick: bool = False, out_dir: str | Path = Path("results") / NAME) -> dict:
    """Audit the model with each bug planted; check each rule alone at float32 and float64.

    Writes ``audit.txt`` (the five audits), ``rules_alone.txt`` (every report) and
    ``metrics.json``; ``metrics["checks"]`` are the claims.
    """
    import gradlab
    from experiments._common import prepare_out, write_metrics

    out = prepare_out(out_dir)
    n, d = (8, 4) if quick else (16, 8)
    params, x, labels = init(jax.random.key(0), n, d)
    metrics: dict = {"n": n, "d": d, "audits": {}}
    lines = []
    for bug in (None, *RULES):
        t0 = time.perf_counter()
        report = gradlab.audit_rules(lambda p, bug=bug: model(p, x, labels, bug), params)
        seconds = time.perf_counter() - t0
        named = sorted(set(report.failing))
        metrics["audits"][str(bug)] = {"ok": report.ok, "named": named, "seconds": seconds}
        lines += [f"== planted: {bug}", str(report), ""]
    (out / "audit.txt").write_text("\n".join(lines))
    alone, alone_lines = check_alone(n, d)
    metrics["alone"] = alone
    (out / "rules_alone.txt").write_text("\n".join(alone_lines))
    audits = metrics["audits"]
    metrics["checks"] = {
        "no bug: every rule passes": audits["None"]["ok"],
        **{
            f"{rule} planted: exactly {rule} is named": audits[rule]["named"] == [rule]
            for rule in RULES
        },
        "every correct rule passes alone in float64 and float32 (no false alarm)": all(
            v["ok"] for k, v in alone.items() if ", correct, " in k
        ),
        "every planted bug is caught alone in float64 and float32, named as a hand bug": all(
            not v["ok"] and v["first"].startswith("hand bug")
            for k, v in alone.items()
            if ", planted, " in k
        ),
    }
    write_metrics(out / "metrics.json", metrics)
    return metrics


if __name__ == "__main__":
    from experiments._common import main

    main(NAME, run, __doc__)
