r"""Fast mode: each leaf checked along ``directions`` seeded random directions through JVPs; a
leaf whose directions disagree is rerun in full (``_precision``) to localize the error.

Along a direction :math:`v` (zero outside its leaf) the hand gradient gives
:math:`\langle g^{hand}, v\rangle`, autodiff the JVP, and the four loss values
:math:`f(x \pm hv)`, :math:`f(x \pm \tfrac h2 v)` the Richardson referee (``_differences``
eq. (2)). The leaf passes when ``_compare`` eq. (1) summed along :math:`v` holds:

.. math::  \lvert\langle g^{hand} - g^{ad}, v\rangle\rvert \le
           \sum_i \lvert v_i\rvert\,\max(\mathrm{atol}, \mathrm{rtol}\,\lvert g^{hand}_i\rvert)
                                                                                        \tag{1}
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab.check import _compare, _differences, _findings, _tree, _witnesses
from gradlab.check._precision import Checked, Parts, finish, judge_all, tolerance_for
from gradlab.check._problem import Problem
from gradlab.check._report import LeafReport
from gradlab.check._settings import Settings
from gradlab.check._verdict import Finding, Verdict
from gradlab.check._witnesses import HandCall, Witnesses


def directions(problem: Problem, seed: tuple[int, ...], k: int) -> np.ndarray:
    """``k`` seeded Gaussian directions per report leaf, zero outside it: rows ``(L k, N)``
    (drawn on host: a jax PRNG program would compile once per shape)."""
    V = np.zeros((k * len(problem.leaves), problem.size), problem.dtype)
    for pos, leaf in enumerate(problem.leaves):
        rng = np.random.default_rng([*seed, pos])
        V[pos * k : (pos + 1) * k, leaf.span] = rng.standard_normal((k, leaf.size))
    return V


def _jvp_values(loss: Callable, argnums, args, V, h):
    """Traceable: ``f(x)``, and per row ``v`` of ``V`` the JVP along ``v`` and the four values
    ``f(x +- h v)``, ``f(x +- h/2 v)``."""
    x, unravel = ravel_pytree(_tree.get_params(args, argnums))

    def f(xv):
        return loss(*_tree.set_params(args, argnums, unravel(xv)))

    def one(v):
        _, t = jax.jvp(f, (x,), (v,))
        s = jnp.stack([h, -h, 0.5 * h, -0.5 * h])
        return t, jax.vmap(lambda d: f(x + d * v))(s)

    return (f(x), *jax.vmap(one)(V))


@functools.lru_cache(maxsize=256)
def _directional(loss: Callable, argnums) -> Callable:
    return jax.jit(functools.partial(_jvp_values, loss, argnums))


@functools.lru_cache(maxsize=256)
def _fused(loss: Callable, hand: Callable, argnums) -> Callable:
    def run(args, V, h):
        return (hand(*args), *_jvp_values(loss, argnums, args, V, h))

    return jax.jit(run)


def _along(problem: Problem, V: np.ndarray):
    """``(raw hand, HandCall, f(x), jvp (m,), FD along the rows of V)``, fused when possible."""
    scale = max([1.0] + [float(np.max(np.abs(a), initial=0.0)) for a in _leaf_arrays(problem)])
    h = _differences.steps(np.asarray([scale]), problem.dtype)[0]
    Vj = jnp.asarray(V, problem.dtype)
    try:
        raw, value, jvp, vals = _fused(problem.loss, problem.hand, problem.argnums)(
            problem.args, Vj, h
        )
        call = HandCall(True)
    except Exception:  # noqa: BLE001 - the one-by-one path raises the precise error
        raw, call = _witnesses.call_hand(problem.hand, problem.args)
        value, jvp, vals = _directional(problem.loss, problem.argnums)(problem.args, Vj, h)
    eps = _differences.eps_of(problem.dtype)
    fd = _differences.FD.from_values(np.asarray(vals), np.full(V.shape[0], float(h)), 0.0, eps)
    return raw, call, float(value), np.asarray(jvp, np.float64), fd


def _leaf_arrays(problem: Problem) -> list[np.ndarray]:
    """The parameter leaves on host (no concatenation on device)."""
    return [np.asarray(a) for a in jax.tree.leaves(problem.params)]


def _leaf_along(leaf, hand, v, jvp, fd, k, tol) -> tuple[LeafReport, int] | None:
    """Eq. (1) for one leaf: its report and FD agreements when it passes, None otherwise."""
    v = np.asarray(v, np.float64)
    h = hand[leaf.span]
    hv = v @ h
    a_tol = tol.rtol * tol.scale if tol.atol is None else tol.atol
    absv = np.abs(v)
    with np.errstate(all="ignore"):
        err = np.abs(hv - jvp)
        bound = absv @ np.maximum(a_tol, tol.rtol * np.abs(h))  # (1)
        rel = np.where(err == 0, 0.0, err / (absv @ np.maximum(np.abs(h), tol.scale)))
    finite = np.all(np.isfinite(hv)) and np.all(np.isfinite(jvp))
    if not (finite and np.all(err <= bound)):
        return None
    agree = int(_compare.referee(fd.r, fd.err, jvp, 0.0, fd.eps).sum())
    rep = LeafReport(
        leaf.path, leaf.shape, True, _findings.largest(err), _findings.largest(rel), (), 0,
        f"{k} random directions",
    )  # fmt: skip
    return rep, agree


class _Pass:
    """One precision's directional pass: which leaves passed, the hand, the call."""

    def __init__(self, problem: Problem, s: Settings, is_user: bool):
        k = s.directions
        V = directions(problem, s.seed, k)
        raw, self.call, self.value, jvp, fd = _along(problem, V)
        self.hand, self.hand_value, self.dtypes = _witnesses.hand_part(problem, raw)
        self.tol = tolerance_for(problem, s, is_user, self.hand)
        self.passed: dict[int, tuple[LeafReport, int]] = {}
        for pos, leaf in enumerate(problem.leaves):
            rows = slice(pos * k, (pos + 1) * k)
            res = _leaf_along(
                leaf, self.hand, V[rows, leaf.span], jvp[rows], fd.slice(rows), k, self.tol
            )
            if res is not None:
                self.passed[pos] = res

    def witnesses(self, autodiff: np.ndarray) -> Witnesses:
        return Witnesses(self.hand, autodiff, self.value, self.hand_value, self.dtypes, self.call)


def run_fast(problems: list[Problem], s: Settings) -> list[Checked]:
    """Every precision along random directions; failing leaves rerun in full."""
    passes = [_Pass(p, s, i == 0) for i, p in enumerate(problems)]
    rerun = np.zeros(problems[0].size, bool)
    for p, ps in zip(problems, passes, strict=True):
        for pos, leaf in enumerate(p.leaves):
            rerun[leaf.span] |= pos not in ps.passed
    if not rerun.any():
        nan = np.full(problems[0].size, np.nan)
        return [
            Checked(_report(p, ps, None, None, s), None, ps.witnesses(nan))
            for p, ps in zip(problems, passes, strict=True)
        ]
    wits = []
    for p, ps in zip(problems, passes, strict=True):
        _, ad = _witnesses.autodiff(p.loss, p.args, p.argnums)
        wits.append(ps.witnesses(_witnesses.autodiff_part(p, ad)))
    wide = problems[-1]
    fd = _partial_fd(wide, wits[-1].value, rerun, s.fd_budget)
    tols = [
        tolerance_for(p, s, i == 0, w.hand, w.autodiff)
        for i, (p, w) in enumerate(zip(problems, wits, strict=True))
    ]
    judged = judge_all(problems, wits, tols, fd, s, rerun)
    return [
        Checked(_report(p, ps, j, t, s), j, w)
        for p, ps, j, t, w in zip(problems, passes, judged, tols, wits, strict=True)
    ]


def _partial_fd(problem: Problem, f0: float, where: np.ndarray, budget: int):
    """The ``FD`` of the elements ``where``, NaN elsewhere (full length, sliced per leaf)."""
    idx = np.flatnonzero(where)
    part = _differences.differences(problem.loss, problem.args, problem.argnums, f0, budget, idx)
    values = np.full((where.size, 4), np.nan)
    h = np.ones(where.size)
    values[idx], h[idx] = part.values, part.h
    return _differences.FD.from_values(values, h, f0, part.eps)


def _report(problem: Problem, ps: _Pass, j, tol, s: Settings):
    parts = Parts()
    for pos, leaf in enumerate(problem.leaves):
        if pos in ps.passed:
            rep, agree = ps.passed[pos]
            parts.leaves.append(rep)
            parts.agree, parts.n_fd = parts.agree + agree, parts.n_fd + s.directions
            continue
        parts.verdicts.append(Verdict(Finding.FAST_RERUN, leaf.path, leaf.size, leaf.size))
        parts.add_leaf(leaf, j.slice(leaf.span), s.n_worst)
    tol = ps.tol if tol is None else tol
    return finish(problem, ps.witnesses(np.zeros(0)), tol, s, "fast", parts)
