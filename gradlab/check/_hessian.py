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

  with error estimate :math:`\lvert D(h/2) - D(h)\rvert/3 + 2\varepsilon\max\lvert g\rvert/h`:
  the same pure ``_differences.richardson`` the gradient check uses.

Directions :math:`v`: every basis vector (the full Hessian) for a hand Hessian, and for a hand HVP
when :math:`N \le` ``max_dense``; otherwise ``directions`` seeded Gaussian vectors. A Hessian
block is reported as ``H[row leaf, column leaf]`` with indices ``(row..., column...)``; HVP rows
as ``Hv[leaf]`` with indices ``(direction, element...)`` (``LeafReport.axes`` names them). Hand
against autodiff is judged with ``_compare`` eq. (1) (the scale is the Hessian's largest magnitude);
differences of the gradient referee.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab.check import _compare, _differences, _findings, _tree, _witnesses
from gradlab.check._judge import Tolerance, judge_smooth
from gradlab.check._problem import Problem, ReportLeaf, build
from gradlab.check._report import HessianReport
from gradlab.check._settings import DEFAULT_DIRECTIONS, seed_words
from gradlab.check._verdict import Finding, Verdict

KINDS = ("auto", "hessian", "hvp")


@functools.lru_cache(maxsize=128)
def _ad_hessian(loss, argnums):
    return jax.jit(jax.hessian(loss, argnums))


@functools.lru_cache(maxsize=128)
def _ad_hvp(loss, argnums):
    """Forward over reverse, vmapped over the rows of ``V`` (raveled directions)."""

    def run(args, V):
        x, unravel = ravel_pytree(_tree.get_params(args, argnums))

        def g(xv):
            grad = jax.grad(loss, argnums)(*_tree.set_params(args, argnums, unravel(xv)))
            return ravel_pytree(grad)[0]

        return jax.vmap(lambda v: jax.jvp(g, (x,), (v,))[1])(V)

    return jax.jit(run)


def _gradient_values(gfun, problem: Problem, V: np.ndarray, h: float, traced: bool) -> np.ndarray:
    """``g(x + s v)`` for ``s`` in ``(h, -h, h/2, -h/2)`` per row ``v``: shape ``(m, 4, N)``."""
    x, unravel = problem.ravel()

    def g_at(xv):
        return ravel_pytree(gfun(*problem.with_params(unravel(xv))))[0]

    steps = np.asarray([h, -h, 0.5 * h, -0.5 * h], x.dtype)
    if traced:
        f = jax.jit(jax.vmap(lambda v: jax.vmap(lambda s: g_at(x + s * v))(jnp.asarray(steps))))
        return np.asarray(f(jnp.asarray(V, x.dtype)), np.float64)
    return np.asarray(
        [[np.asarray(g_at(jnp.asarray(x + s * v)), np.float64) for s in steps] for v in V]
    )


@dataclasses.dataclass(frozen=True)
class GradDifferences:
    """Eq. (1) per direction (rows of ``V``): ``r``, ``err`` ``(m, N)``; the gradient values
    ``(m, 4, N)`` and the step, kept for :meth:`refined`."""

    r: np.ndarray
    err: np.ndarray
    values: np.ndarray
    h: float
    eps: float

    def refined(self, gfun, problem: Problem, V, traced: bool, cols: np.ndarray):
        """Eq. (3) of ``_differences`` (Romberg, steps down to ``h/8``) on the directions
        ``cols``, where the referee was undecided."""
        if not cols.any():
            return self
        fine = _gradient_values(gfun, problem, V[cols], self.h / 4, traced)
        size = np.maximum(np.abs(self.values[cols]).max(axis=1), np.abs(fine).max(axis=1))
        d = (*_central_rows(self.values[cols], self.h), *_central_rows(fine, self.h / 4))
        r, err = self.r.copy(), self.err.copy()
        r[cols], err[cols] = _differences.romberg(d, size, self.eps, self.h)
        return dataclasses.replace(self, r=r, err=err)


def _central_rows(vals: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    return (vals[:, 0] - vals[:, 1]) / (2 * h), (vals[:, 2] - vals[:, 3]) / h


def grad_differences(gfun, problem: Problem, V: np.ndarray, traced: bool) -> GradDifferences:
    """Eq. (1) for each row of ``V``, with the pure ``_differences.richardson``."""
    x, _ = problem.ravel()
    h = float(_differences.steps(np.asarray([max(1.0, float(np.max(np.abs(x))))]), x.dtype)[0])
    vals = _gradient_values(gfun, problem, V, h, traced)
    eps = _differences.eps_of(x.dtype)
    r, err = _differences.richardson(*_central_rows(vals, h), np.abs(vals).max(axis=1), eps, h)
    return GradDifferences(r, err, vals, h, eps)


def _dense_hessian(tree, problem: Problem, witness: str) -> np.ndarray:
    """The nested ``[i][j]`` blocks of a Hessian pytree as one (N, N) matrix, shapes checked."""
    tdef = jax.tree.structure(problem.params)
    try:
        blocks = [tdef.flatten_up_to(r) for r in tdef.flatten_up_to(tree)]  # type: ignore[attr-defined]  # jaxlib ships PyTreeDef without stubs
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{witness} must be the nested pytree jax.hessian returns (outer and inner structure "
            f"{tdef}); got {jax.tree.structure(tree)}"
        ) from err
    rows = []
    for li, row in zip(problem.tree_leaves, blocks, strict=True):
        cols = []
        for lj, blk in zip(problem.tree_leaves, row, strict=True):
            if tuple(np.shape(blk)) != li.shape + lj.shape:
                raise ValueError(
                    f"{witness} block H[{li.path}, {lj.path}] has shape {tuple(np.shape(blk))} "
                    f"but expected {li.shape + lj.shape} (leaf shapes {li.shape} and {lj.shape})"
                )
            cols.append(np.asarray(blk, np.float64).reshape(li.size, lj.size))
        rows.append(np.concatenate(cols, axis=1))
    return np.concatenate(rows, axis=0)


def _is_hvp(fn, nargs) -> bool:
    try:
        inspect.signature(fn).bind(*range(nargs + 1))
    except (TypeError, ValueError):
        return False
    try:
        inspect.signature(fn).bind(*range(nargs))
    except TypeError:
        return True
    return False


@dataclasses.dataclass(frozen=True)
class _Witnessed:
    """Hand and autodiff ``(N, m)`` (column ``j`` is ``H v_j``), the directions, the call."""

    H: np.ndarray
    A: np.ndarray
    V: np.ndarray
    how: str
    mode: str


def _hessian_witnesses(problem: Problem, hess) -> _Witnessed:
    raw, call = _witnesses.call_hand(hess, problem.args)
    H = _dense_hessian(raw, problem, "hess(*args)")
    A = _dense_hessian(
        _ad_hessian(problem.loss, problem.argnums)(*problem.args), problem, "jax.hessian"
    )
    V = np.eye(problem.size, dtype=problem.dtype)
    return _Witnessed(H, A, V, call.how, "hessian, every element")


def _hvp_witnesses(problem: Problem, hvp, V: np.ndarray, mode: str) -> _Witnessed:
    _, unravel = problem.ravel()
    cols, call = [], None
    for v in V:
        args = (*problem.args, unravel(jnp.asarray(v)))
        if call is None or call.traced:
            raw, call = _witnesses.call_hand(hvp, args)
        else:  # it did not trace on the first direction: the rest eagerly, in this call only
            raw = hvp(*_tree.copies(args))
        got = _tree.check_grad_tree(
            "hess(*args, v)", raw, problem.params, problem.argnums, list(problem.tree_leaves)
        )
        cols.append(np.concatenate([np.asarray(g, np.float64).ravel() for g in got]))
    A = np.asarray(_ad_hvp(problem.loss, problem.argnums)(problem.args, jnp.asarray(V)), np.float64)
    assert call is not None  # V holds at least one direction
    return _Witnessed(np.stack(cols, axis=1), A.T, V, call.how, mode)


def _blocks(problem: Problem, kind: str, m: int):
    """``(path, rows, cols, ReportLeaf, axes, transpose)`` per block of the ``(N, m)`` matrices."""
    out = []
    for li in problem.leaves:
        if kind == "hessian":
            for lj in problem.leaves:
                leaf = ReportLeaf(f"H[{li.path}, {lj.path}]", li.shape + lj.shape, 0)
                out.append((li.span, lj.span, leaf, ("row", "column"), False))
        else:
            leaf = ReportLeaf(f"Hv[{li.path}]", (m, *li.shape), 0)
            out.append((li.span, slice(0, m), leaf, ("direction", "element"), True))
    return out


def _judge_blocks(problem, w: _Witnessed, R, E, tol, kind, n_worst, label):
    reports, nonfinite, verdicts, agree = [], [], [], 0
    fd_eps = max(_differences.eps_of(np.float64), tol.eps)
    for rows, cols, leaf, axes, transpose in _blocks(problem, kind, w.V.shape[0]):
        pick = [M[rows, cols] for M in (w.H, w.A, R, E)]
        if transpose:
            pick = [p.T for p in pick]
        hand, auto, r, err = (p.ravel() for p in pick)
        j = judge_smooth(hand, auto, r, err, fd_eps, tol)
        rep = _findings.leaf_report(leaf, j, n_worst)
        reports.append(dataclasses.replace(rep, axes=axes))
        nonfinite += [n for n in _findings.nonfinite(leaf, j) if n.witness == "hand"]
        for v in _findings.verdicts(leaf, j):
            example = dataclasses.replace(v.example, axes=axes) if v.example else None
            verdicts.append(dataclasses.replace(v, detail=label, example=example))
        agree += int(j.fd_agree.sum())
    return reports, nonfinite, verdicts, agree


def check_hessian(
    loss: Callable[..., jax.Array],
    hess: Callable[..., Any],
    *args: Any,
    argnums: int | tuple[int, ...] = 0,
    kind: str = "auto",
    grad: Callable[..., Any] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    key: jax.Array | int | None = None,
    directions: int = DEFAULT_DIRECTIONS,
    max_dense: int = 256,
    n_worst: int = 5,
) -> HessianReport:
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
      key: an int or a jax PRNG key seeding the random directions (as in :func:`check_grad`).
      directions: number of random directions (HVP with more than ``max_dense`` parameters).
      max_dense: largest parameter count for which an HVP is checked on every basis vector.
      n_worst: elements listed per block.

    Returns:
      A :class:`HessianReport`: one "leaf" per Hessian block ``H[row leaf, column leaf]``
      (indices ``(row..., column...)``) or per HVP output leaf ``Hv[leaf]`` (indices
      ``(direction, element...)``), ``fd`` the differences of the gradient.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    if not callable(loss) or not callable(hess):
        raise TypeError("loss and hess must be callable")
    if isinstance(directions, bool) or not isinstance(directions, int) or directions < 1:
        raise ValueError(f"directions must be a positive int; got {directions!r}")
    rtol = _compare.check_tolerance("rtol", rtol)
    atol = _compare.check_tolerance("atol", atol)
    problem = build(loss, hess, args, argnums)
    _witnesses.check_scalar_loss(loss, args)
    if kind == "auto":
        kind = "hvp" if _is_hvp(hess, len(args)) else "hessian"
    w = _witness(problem, hess, kind, max_dense, directions, seed_words(key))
    gfun = grad if grad is not None else jax.grad(loss, problem.argnums)
    traced = grad is None or _witnesses.call_hand(grad, problem.args)[1].traced
    label = f"the third witness: differences of {'the hand gradient' if grad else 'jax.grad'}"
    rtol = _compare.default_rtol(problem.dtype) if rtol is None else rtol
    tol = Tolerance(rtol, atol, _compare.finite_max(w.H, w.A), _differences.eps_of(problem.dtype))
    diffs = grad_differences(gfun, problem, w.V, traced)
    fd_eps = max(diffs.eps, tol.eps)
    pre = judge_smooth(
        w.H.ravel(), w.A.ravel(), diffs.r.T.ravel(), diffs.err.T.ravel(), fd_eps, tol
    )
    undecided = np.asarray(pre.masks.inconclusive.reshape(w.H.shape).any(axis=0))  # per direction
    diffs = diffs.refined(gfun, problem, w.V, traced, undecided)
    judged = _judge_blocks(problem, w, diffs.r.T, diffs.err.T, tol, kind, n_worst, label)
    return _report(problem, w, tol, kind, label, judged)


def _witness(problem, hess, kind, max_dense, directions, seed) -> _Witnessed:
    if kind == "hessian":
        return _hessian_witnesses(problem, hess)
    n = problem.size
    if n <= max_dense:
        return _hvp_witnesses(
            problem, hess, np.eye(n, dtype=problem.dtype), f"hvp on all {n} basis vectors"
        )
    rng = np.random.default_rng(list(seed))
    V = rng.standard_normal((directions, n)).astype(problem.dtype)
    return _hvp_witnesses(problem, hess, V, f"hvp on {directions} random directions")


def _report(problem, w, tol, kind, label, judged) -> HessianReport:
    reports, nonfinite, verdicts, agree = judged
    ok = all(r.ok for r in reports)
    mode = f"{w.mode}; {label}"
    if ok:
        n = int(w.H.size)
        detail = f"checked ({mode}): hand equals autodiff"
        verdicts = [Verdict(Finding.OK, count=n, total=n, detail=detail), *verdicts]
    return HessianReport(
        ok=bool(ok),
        mode=mode,
        dtype=str(problem.dtype),
        rtol=tol.rtol,
        atol=tol.atol,
        hand_witness=w.how,
        leaves=tuple(reports),
        nonfinite=tuple(nonfinite),
        verdicts=tuple(verdicts),
        fd_agree=(agree, int(w.H.size)),
        kind=kind,
    )
