r"""``check_hypergrad``: implicit, unrolled and finite differences side by side, and who is off.

The judgement, per element :math:`i` of the hyperparameters, with the finite-difference
referee :math:`R_i \pm \delta_i` (``finite_diff``):

.. math::  \text{off}_i(w) \iff |w_i - R_i| > \mathrm{rtol}\,\max(|w_i|, |R_i|)
           + 10^{-3}\,\mathrm{rtol}\,s + 3\,\delta_i, \qquad s = \max_{w,i} |w_i|       \tag{1}

and then, in order:

1. a kink seen by finite differences or a tight coordinate in the implicit solution:
   ``NONSMOOTH`` and nothing else (the hypergradient does not exist there);
2. a witness that refused: its reason (``INNER_NOT_CONVERGED``, ``LINEAR_SOLVE_NOT_CONVERGED``,
   ``INNER_DIVERGED``);
3. a referee too noisy (:math:`\max\delta > 0.1\,s`), or implicit and unrolled agreeing with
   each other and not with it: ``FD_INCONCLUSIVE``;
4. a witness off by (1): its cause read from its inner residual :math:`r_w` against the
   referee's :math:`r_\star` (the fixed-point residual of ``fd_solve``): if
   :math:`r_w > \max(100\,r_\star,\ 10^3\varepsilon)` the inner iterate was not at the optimum
   (``INNER_NOT_CONVERGED`` for implicit, ``UNROLL_TRUNCATED`` for unrolled), else the formula
   is wrong (``IMPLICIT_OFF``, ``UNROLLED_OFF``);
5. otherwise ``AGREE``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab._validate import leaf_names
from gradlab.hypergrad import _implicit as imp
from gradlab.hypergrad import _problem
from gradlab.hypergrad import _stationarity as st
from gradlab.hypergrad import _unrolled as unr
from gradlab.hypergrad._findings import Finding, HypergradRefused, Witness
from gradlab.hypergrad._finite_diff import FDResult, hypergrad_fd
from gradlab.hypergrad._report import HypergradReport, Verdict, WitnessValue

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Unroll:
    """How to run the unrolled witness: ``optimizer`` (or ``optimizer(hp)``), ``steps``,
    ``block`` (default :math:`\\lceil\\sqrt{T}\\rceil`)."""

    optimizer: Any
    steps: int
    block: int | None = None


def _flat(tree) -> tuple[float, ...]:
    return tuple(float(x) for x in np.asarray(ravel_pytree(tree)[0], np.float64))


def element_names(hyperparams: PyTree) -> tuple[str, ...]:
    names = []
    for name, leaf in zip(
        leaf_names(hyperparams, "hyperparams"), jax.tree.leaves(hyperparams), strict=True
    ):
        shape = np.shape(leaf)
        if shape == ():
            names.append(name)
        else:
            names += [f"{name}[{', '.join(map(str, i))}]" for i in np.ndindex(*shape)]
    return tuple(names)


def _residual(problem, params, hp) -> float:
    return float(st.fixed_point_residual(st.flatten(problem, params), hp))


def implicit_witness(problem, val, hp, solve, implicit, cfg) -> WitnessValue:
    """gradlab's implicit answer (or its refusal), or the user's ``implicit(hp)`` callable."""
    if implicit is not None:
        value = _flat(implicit(hp))
        return WitnessValue(Witness.IMPLICIT, value, None, _residual(problem, solve(hp), hp))
    try:
        res = imp.implicit(
            problem,
            val,
            hp,
            solve=solve,
            rtol=cfg.rtol,
            linear_solver=cfg.linear_solver,
            maxiter=cfg.maxiter,
        )
        refused = None
    except HypergradRefused as e:
        res, refused = e.result, e.finding
    return WitnessValue(
        Witness.IMPLICIT,
        None if refused else _flat(res.hypergrad),
        (float(res.error_estimate),),
        float(res.inner_residual),
        float(res.linear_residual),
        refused,
        tight=int(res.tight),
    )


def unrolled_witness(problem, val, hp, unroll: Unroll) -> WitnessValue:
    try:
        res = unr.unrolled(
            problem, val, hp, optimizer=unroll.optimizer, steps=unroll.steps, block=unroll.block
        )
    except HypergradRefused as e:
        return WitnessValue(Witness.UNROLLED, None, refused=e.finding)
    return WitnessValue(
        Witness.UNROLLED, _flat(res.hypergrad), inner_residual=float(res.inner_residual)
    )


def _fd_witness(fd: FDResult, ref_residual: float) -> WitnessValue:
    return WitnessValue(
        Witness.FINITE_DIFFERENCES,
        tuple(map(float, fd.value)),
        tuple(map(float, fd.error)),
        ref_residual,
        kink=tuple(bool(k) for k in fd.kink),
        jump=tuple(float(j) for j in fd.jump),
    )


def _value(w: WitnessValue) -> np.ndarray:
    """The answer of a witness that answered (``judge`` compares only those)."""
    if w.value is None:
        raise ValueError(f"the {w.witness} witness gave no value to compare")
    return np.asarray(w.value)


def judge(
    witnesses: list[WitnessValue], fd: WitnessValue, rtol: float, eps: float
) -> tuple[Verdict, ...]:
    """Steps 1-5 of the module docstring."""
    imp_w = next((w for w in witnesses if w.witness is Witness.IMPLICIT), None)
    if any(fd.kink) or (imp_w is not None and imp_w.tight > 0):
        jump = max((abs(j) for j, k in zip(fd.jump, fd.kink, strict=True) if k), default=None)
        who = Witness.FINITE_DIFFERENCES if any(fd.kink) else Witness.IMPLICIT
        return (Verdict(Finding.NONSMOOTH, who, evidence=jump),)  # step 1
    verdicts = [
        Verdict(
            w.refused,
            w.witness,
            evidence=w.linear_residual
            if w.refused is Finding.LINEAR_SOLVE_NOT_CONVERGED
            else w.inner_residual,
        )
        for w in witnesses
        if w.refused is not None
    ]  # step 2
    answered = [w for w in witnesses if w.value is not None]
    R, delta = np.asarray(fd.value), np.asarray(fd.error)
    scale = max([float(np.max(np.abs(_value(w)), initial=0.0)) for w in answered + [fd]])

    def tol(a):
        return rtol * np.maximum(np.abs(a), np.abs(R)) + 1e-3 * rtol * scale + 3 * delta  # (1)

    def off(a) -> tuple[bool, float, float]:
        a = np.asarray(a)
        d, t = np.abs(a - R), tol(a)
        return bool(np.any(~(d <= t))), float(np.max(d)), float(np.max(t))

    noisy = float(np.max(delta, initial=0.0)) > 0.1 * scale and scale > 0
    pair = len(answered) == 2 and not np.any(
        np.abs(np.subtract(_value(answered[0]), _value(answered[1])))
        > tol(_value(answered[0])) - 3 * delta
    )
    if noisy or (pair and all(off(w.value)[0] for w in answered)):
        verdicts.append(
            Verdict(
                Finding.FD_INCONCLUSIVE,
                Witness.FINITE_DIFFERENCES,
                evidence=float(np.max(delta, initial=0.0)),
            )
        )  # step 3
        return tuple(verdicts)
    floor = max(100 * (fd.inner_residual or 0.0), 1e3 * eps)
    for w in answered:  # step 4
        is_off, d, t = off(w.value)
        if not is_off:
            continue
        stale = w.inner_residual is not None and w.inner_residual > floor
        finding = {
            (Witness.IMPLICIT, True): Finding.INNER_NOT_CONVERGED,
            (Witness.IMPLICIT, False): Finding.IMPLICIT_OFF,
            (Witness.UNROLLED, True): Finding.UNROLL_TRUNCATED,
            (Witness.UNROLLED, False): Finding.UNROLLED_OFF,
        }[(w.witness, stale)]
        verdicts.append(Verdict(finding, w.witness, d, t, w.inner_residual))
    return tuple(verdicts) or (Verdict(Finding.AGREE),)  # step 5


def check_hypergrad(
    problem: _problem.InnerProblem,
    val: Callable[[PyTree], jax.Array],
    hyperparams: PyTree,
    *,
    solve: Callable[[PyTree], PyTree],
    unroll: Unroll | None = None,
    implicit: Callable[[PyTree], PyTree] | None = None,
    fd_solve: Callable[[PyTree], PyTree] | None = None,
    referee: FDResult | None = None,
    rtol: float = 1e-6,
    linear_solver: str = "cg",
    maxiter: int | None = None,
) -> HypergradReport:
    r"""Three witnesses of :math:`\nabla_\lambda V(\theta^\star(\lambda))` and who is off, eq. (1).

    Args:
      problem: the :class:`InnerProblem`.
      val: ``val(params) -> scalar``.
      hyperparams: pytree of floating array leaves.
      solve: ``solve(hp) -> params`` for the implicit witness (and the referee by default).
      unroll: an :class:`Unroll` to run the unrolled witness, or ``None`` to skip it.
      implicit: a hypergradient to audit, ``implicit(hp) -> pytree like hp`` (say, a hand
        implicit formula); ``None`` runs gradlab's :func:`implicit` with ``solve``.
      fd_solve: the exact inner solve the finite-difference referee differentiates (default
        ``solve``).
      referee: a :func:`hypergrad_fd` result of ``fd_solve`` at ``hyperparams`` to reuse (when
        auditing several candidates at one point); ``None`` computes it.
      rtol: relative tolerance of eq. (1), and the accuracy asked of the implicit witness.
      linear_solver, maxiter: passed to :func:`implicit`.

    Returns:
      A :class:`HypergradReport` (``.ok``, ``.verdicts``, ``.to_dict()``, ``str()``).

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from gradlab.hypergrad import InnerProblem, Unroll, check_hypergrad
      >>> loss = lambda w, lam: 0.5 * jnp.sum((w - 1.0) ** 2) + 0.5 * lam * (w @ w)
      >>> prob = InnerProblem(loss, jnp.zeros(2))
      >>> solve = lambda lam: jnp.ones(2) / (1 + lam)
      >>> rep = check_hypergrad(prob, jnp.sum, jnp.asarray(1.0), solve=solve,
      ...                       unroll=Unroll(optax.sgd(0.5), 100))
      >>> rep.ok, [v.finding.value for v in rep.verdicts]
      (True, ['agree'])
    """
    cfg = imp.ImplicitConfig(rtol=rtol, linear_solver=linear_solver, maxiter=maxiter)
    imp.check_config(cfg)
    _problem.check_problem(problem, hyperparams)
    _problem.check_validation(val, problem.params0)
    fd_solve = solve if fd_solve is None else fd_solve
    witnesses = [implicit_witness(problem, val, hyperparams, solve, implicit, cfg)]
    if unroll is not None:
        witnesses.append(unrolled_witness(problem, val, hyperparams, unroll))
    fd = hypergrad_fd(val, jax.jit(fd_solve), hyperparams) if referee is None else referee
    ref = fd_solve(hyperparams)
    fd_w = _fd_witness(fd, _residual(problem, ref, hyperparams))
    eps = float(jnp.finfo(jnp.result_type(ravel_pytree(hyperparams)[0])).eps)
    verdicts = judge(witnesses, fd_w, rtol, eps)
    return HypergradReport(element_names(hyperparams), (*witnesses, fd_w), verdicts, rtol)
