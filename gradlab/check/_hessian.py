r"""``check_hessian``: a hand Hessian, or a hand Hessian-vector product, against autodiff and
against differences of the gradient.

Witnesses, for the parameters raveled into :math:`x \in \mathbb{R}^N`:

* hand: ``hess(*args)`` (the nested pytree ``jax.hessian`` returns, block ``[i][j]`` of shape
  ``leaf_i.shape + leaf_j.shape``), or ``hvp(*args, v)`` (a pytree like the parameters);
* autodiff: ``jax.hessian`` (forward over reverse), or :math:`Hv` by forward over reverse,
  ``jax.jvp(jax.grad(loss), (x,), (v,))``;
* differences of the gradient (the hand gradient ``grad`` when given, else ``jax.grad``): with
  :math:`h` a power-of-two step :math:`\approx\varepsilon^{1/5}\max(1, \lVert x\rVert_\infty)`,

.. math::  D(h) = \frac{g(x + hv) - g(x - hv)}{2h},\qquad
           R = D(\tfrac h2) + \frac{D(\tfrac h2) - D(h)}{3} = Hv + O(h^4)                 \tag{1}

  with error estimate :math:`\lvert D(h/2) - D(h)\rvert/3 + 2\varepsilon\max\lvert g\rvert/h`.

Directions :math:`v`: every basis vector (the full Hessian) for a hand Hessian, and for a hand HVP
when :math:`N \le` ``max_dense``; otherwise ``directions`` seeded Gaussian vectors. Hand against
autodiff is judged with ``_compare`` eq. (1) (the scale is the Hessian's largest magnitude);
differences of the gradient referee.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab.check import _compare, _tree, _witnesses
from gradlab.check._legacy_report import Element, GradReport, LeafReport, NonFinite

Kinds = ("auto", "hessian", "hvp")


@functools.lru_cache(maxsize=128)
def _ad_hessian(loss, argnums):
    return jax.jit(jax.hessian(loss, argnums))


@functools.lru_cache(maxsize=128)
def _ad_hvp(loss, argnums):
    """Forward over reverse, vmapped over the rows of ``V`` (raveled directions)."""

    def run(args, V):
        params = _tree.get_params(args, argnums)
        x, unravel = ravel_pytree(params)

        def g(xv):
            return ravel_pytree(
                jax.grad(loss, argnums)(*_tree.set_params(args, argnums, unravel(xv)))
            )[0]

        return jax.vmap(lambda v: jax.jvp(g, (x,), (v,))[1])(V)

    return jax.jit(run)


def _grad_differences(gfun, args, argnums, V, traced):
    """Eq. (1) for each row of ``V``: (R, err), both (m, N)."""
    params = _tree.get_params(args, argnums)
    x, unravel = ravel_pytree(params)
    x = np.asarray(x)
    dtype = x.dtype
    eps = float(np.finfo(dtype).eps)
    h = float(_witnesses.steps(np.asarray([max(1.0, float(np.max(np.abs(x))))]), dtype)[0])

    def g_at(xv):
        out = gfun(*_tree.set_params(args, argnums, unravel(xv)))
        return ravel_pytree(out)[0]

    steps = np.asarray([h, -h, 0.5 * h, -0.5 * h], dtype)
    if traced:
        f = jax.jit(jax.vmap(lambda v: jax.vmap(lambda s: g_at(x + s * v))(jnp.asarray(steps))))
        vals = np.asarray(f(jnp.asarray(V, dtype)), np.float64)  # (m, 4, N)
    else:
        vals = np.asarray(
            [[np.asarray(g_at(jnp.asarray(x + s * v)), np.float64) for s in steps] for v in V]
        )
    gp, gm, gp2, gm2 = (vals[:, i] for i in range(4))
    with np.errstate(all="ignore"):
        d1 = (gp - gm) / (2 * h)
        d2 = (gp2 - gm2) / h
        r = d2 + (d2 - d1) / 3.0  # (1)
        err = np.abs(d2 - d1) / 3.0 + 2 * eps * np.abs(vals).max(axis=1) / h
    return r, err


def _dense_hessian(tree, params, argnums, leaves, witness) -> np.ndarray:
    """The nested ``[i][j]`` blocks of a Hessian pytree as one (N, N) matrix, shapes checked."""
    tdef = jax.tree.structure(params)
    try:
        rows = tdef.flatten_up_to(tree)
        blocks = [tdef.flatten_up_to(r) for r in rows]
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{witness} must be the nested pytree jax.hessian returns (outer and inner structure "
            f"{tdef}); got {jax.tree.structure(tree)}"
        ) from err
    out = []
    for li, row in zip(leaves, blocks, strict=True):
        cols = []
        for lj, blk in zip(leaves, row, strict=True):
            want = li.shape + lj.shape
            if tuple(np.shape(blk)) != want:
                raise ValueError(
                    f"{witness} block {li.path}{lj.path} has shape {tuple(np.shape(blk))} but "
                    f"expected {want} (leaf shapes {li.shape} and {lj.shape})"
                )
            cols.append(np.asarray(blk, np.float64).reshape(li.size, lj.size))
        out.append(np.concatenate(cols, axis=1))
    return np.concatenate(out, axis=0)


def _is_hvp(fn, nargs) -> bool:
    try:
        inspect.signature(fn).bind(*range(nargs + 1))
    except TypeError:
        return False
    except ValueError:
        return False
    try:
        inspect.signature(fn).bind(*range(nargs))
    except TypeError:
        return True
    return False


def check_hessian(
    loss: Callable[..., jax.Array],
    hess: Callable[..., Any],
    *args: Any,
    argnums: int | tuple[int, ...] = 0,
    kind: str = "auto",
    grad: Callable[..., Any] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    key: int = 0,
    directions: int = 8,
    max_dense: int = 256,
    n_worst: int = 5,
) -> GradReport:
    r"""Check a hand Hessian ``hess(*args)`` or HVP ``hess(*args, v)`` (see the module's eq. (1)).

    Args:
      loss: ``loss(*args)``, a real scalar.
      hess: the hand Hessian (nested pytree as ``jax.hessian``) or hand HVP (``kind="hvp"``,
        returns a pytree like the parameters). ``kind="auto"`` picks by the number of arguments
        ``hess`` accepts.
      *args: the loss's arguments.
      argnums: the parameters, as in ``jax.grad``.
      kind: ``"auto"``, ``"hessian"`` or ``"hvp"``.
      grad: the hand gradient, whose differences are the third witness (``jax.grad`` if None).
      rtol, atol: as in :func:`check_grad` (``rtol`` defaults to ``2^12 eps``).
      key: seed of the random directions (HVP with more than ``max_dense`` parameters).
      directions: number of random directions in that case.
      max_dense: largest parameter count for which an HVP is checked on every basis vector.
      n_worst: elements listed per block.

    Returns:
      A :class:`GradReport` titled ``check_hessian``: one "leaf" per Hessian block
      ``[row leaf][column leaf]`` (or per HVP output leaf), indices ``(row..., column...)`` (or
      ``(direction, element...)``), ``fd`` the differences of the gradient.
    """
    if kind not in Kinds:
        raise ValueError(f"kind must be one of {Kinds}; got {kind!r}")
    if not callable(loss) or not callable(hess):
        raise TypeError("loss and hess must be callable")
    argnums = _tree.normalize_argnums(argnums, len(args))
    params = _tree.get_params(args, argnums)
    leaves = _tree.check_params(params, argnums)
    _witnesses.check_scalar_loss(loss, args)
    if kind == "auto":
        kind = "hvp" if _is_hvp(hess, len(args)) else "hessian"
    dtype = np.dtype(jnp.result_type(*[leaf.dtype for leaf in leaves]))
    rtol = _compare.default_rtol(dtype) if rtol is None else float(rtol)
    x, unravel = ravel_pytree(params)
    n = int(x.size)

    gfun = grad if grad is not None else jax.grad(loss, argnums)
    traced = True
    if grad is not None:
        traced = _witnesses.hand(grad, args).traced
    grad_label = "hand gradient" if grad is not None else "jax.grad"

    if kind == "hessian":
        h = _witnesses.hand(hess, args)
        H = _dense_hessian(h.value, params, argnums, leaves, "hess(*args)")
        A = _dense_hessian(
            _ad_hessian(loss, argnums)(*args), params, argnums, leaves, "jax.hessian"
        )
        V = np.eye(n, dtype=np.asarray(x).dtype)
        how = h.how
        mode = f"hessian, every element; third witness: differences of the {grad_label}"
    else:
        if n <= max_dense:
            V = np.eye(n, dtype=np.asarray(x).dtype)
            mode = f"hvp on all {n} basis vectors"
        else:
            rng = np.random.default_rng(key)
            V = rng.standard_normal((directions, n)).astype(np.asarray(x).dtype)
            mode = f"hvp on {directions} random directions"
        mode += f"; third witness: differences of the {grad_label}"
        cols, how = [], ""
        for v in V:
            h = _witnesses.hand(hess, (*args, unravel(jnp.asarray(v))))
            how = h.how
            got = _tree.check_grad_tree("hess(*args, v)", h.value, params, argnums, leaves)
            cols.append(np.concatenate([np.asarray(g, np.float64).ravel() for g in got]))
        H = np.stack(cols, axis=1)  # (N, m): column j is H v_j
        A = np.asarray(_ad_hvp(loss, argnums)(args, jnp.asarray(V)), np.float64).T
    R, Rerr = _grad_differences(gfun, args, argnums, V, traced)
    R, Rerr = R.T, Rerr.T  # (N, m)

    scale = _compare.finite_max(H, A)
    abs_err, rel_err, ok = _compare.judge(H, A, scale, rtol, atol)
    eps = float(np.finfo(dtype).eps)
    fd_a = _compare.referee(R, Rerr, A, scale, eps)
    fd_h = _compare.referee(R, Rerr, H, scale, eps)

    reports, nonfinite, verdicts = [], [], []
    offs = np.cumsum([0] + [leaf.size for leaf in leaves])
    col_blocks = (
        [(lj.path, offs[j], offs[j + 1], lj.shape) for j, lj in enumerate(leaves)]
        if kind == "hessian"
        else [("", 0, V.shape[0], (V.shape[0],))]
    )
    for i, li in enumerate(leaves):
        for cpath, c0, c1, cshape in col_blocks:
            sl = (slice(offs[i], offs[i + 1]), slice(c0, c1))
            e, r_, o = abs_err[sl], rel_err[sl], ok[sl]
            path = f"{li.path}{cpath}" if kind == "hessian" else f"{li.path} (H v_j)"
            shape = li.shape + cshape if kind == "hessian" else (c1 - c0, *li.shape)
            flat_order = np.lexsort(
                (-np.nan_to_num(r_.ravel(), nan=np.inf), -np.where(o.ravel(), 0, 1))
            )[:n_worst]
            worst = []
            for f in flat_order:
                a_, b_ = np.unravel_index(f, e.shape)
                idx = (
                    _tree.index_of(a_, li.shape) + _tree.index_of(b_, cshape)
                    if kind == "hessian"
                    else (int(b_), *_tree.index_of(a_, li.shape))
                )
                worst.append(
                    Element(
                        idx,
                        float(H[sl][a_, b_]),
                        float(A[sl][a_, b_]),
                        float(R[sl][a_, b_]),
                        float(e[a_, b_]),
                        float(r_[a_, b_]),
                    )
                )
            nf = int((~o).sum())
            reports.append(
                LeafReport(
                    path,
                    shape,
                    bool(o.all()),
                    float(np.max(e, initial=0)),
                    float(np.max(r_, initial=0)),
                    tuple(worst),
                    nf,
                )
            )
            for a_, b_ in np.argwhere(~np.isfinite(H[sl]))[:50]:
                nonfinite.append(NonFinite("hand", path, (int(a_), int(b_)), float(H[sl][a_, b_])))
            if nf:
                side = fd_a[sl] & ~fd_h[sl] & ~o
                verdicts.append(
                    f"{'hand bug' if side.any() else 'hand and autodiff disagree'}: {path}: "
                    f"{nf} of {o.size} element(s) differ (max rel err {np.max(r_):.2e})"
                    + (
                        f"; differences of the {grad_label} side with autodiff"
                        if side.any()
                        else ""
                    )
                )
    ok_all = bool(ok.all())
    noise = ok & ~fd_a & ~fd_h
    if noise.any():
        verdicts.append(
            f"FD noise: differences of the {grad_label} disagree with hand and autodiff"
            f" (which agree) at {int(noise.sum())} element(s); not a failure"
        )
    if ok_all:
        verdicts.insert(0, f"ok: hand equals autodiff on all {ok.size} element(s) ({mode})")
    return GradReport(
        ok=ok_all,
        mode=mode,
        dtype=str(dtype),
        rtol=rtol,
        atol=atol,
        hand_witness=how,
        leaves=tuple(reports),
        nonfinite=tuple(nonfinite),
        verdicts=tuple(verdicts),
        title="check_hessian",
    )
