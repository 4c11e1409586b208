r"""Refinement of hyperparameters from a starting point (a grid's best cell) down the hypergradient.

The grid itself (:func:`gradlab.sweeps.hypergrad_sweep`) lives in ``gradlab.sweeps``: the sweep
layer uses hypergrad, never the reverse (ARCHITECTURE.md).

:func:`refine` descends :math:`V(\theta^\star(e^u))` in :math:`u = \log\lambda` from a starting
point (a grid's best cell), with the implicit hypergradient
:math:`g = \nabla_u V = \lambda \odot \nabla_\lambda V`, quasi-Newton directions and a
backtracking (Armijo) line search:

.. math::  u_{k+1} = u_k + \alpha_k d_k, \quad d_k = -B_k g_k, \qquad
           V(u_{k+1}) \le V(u_k) + c\,\alpha_k\, g_k^\top d_k, \; c = 10^{-4}            \tag{1}

:math:`B_k` is the BFGS inverse-Hessian estimate (updated when :math:`s^\top y > 0`), started at
:math:`B_0 = (\text{initial\_step} / \lVert g_0\rVert_\infty) I` so the first trial moves the
largest log-hyperparameter by ``initial_step``; :math:`\alpha_k` starts at 1 and halves on a
rejected trial. Plain gradient descent zig-zags when one log-hyperparameter is far better
determined than another (seed 001's lambda1 against lambda2). Every trial is one inner solve (its
value and hypergradient come from one ``implicit_core`` call); ``inner_solves`` counts them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab.hypergrad import _implicit as imp
from gradlab.hypergrad import _problem

PyTree = Any


@dataclasses.dataclass(frozen=True)
class RefineResult:
    """What :func:`refine` returns.

    Attributes:
      hyperparams: the final point.
      value: :math:`V` there.
      hypergrad: :math:`\\nabla_\\lambda V` there.
      path: ``(value, hyperparams)`` at each accepted iterate, the start first.
      inner_solves: inner problems solved (one per trial point, the start included).
      iterations: accepted steps.
    """

    hyperparams: PyTree
    value: float
    hypergrad: PyTree
    path: tuple[tuple[float, PyTree], ...]
    inner_solves: int
    iterations: int


def _bfgs(B: np.ndarray, s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The BFGS update of the inverse Hessian estimate (skipped unless :math:`s^\\top y > 0`)."""
    sy = float(s @ y)
    if not sy > 1e-12 * float(np.linalg.norm(s) * np.linalg.norm(y)):
        return B
    rho = 1.0 / sy
    V = np.eye(len(s)) - rho * np.outer(s, y)
    return V @ B @ V.T + rho * np.outer(s, s)


def refine(
    problem: _problem.InnerProblem,
    val: Callable[[PyTree], jax.Array],
    hyperparams: PyTree,
    *,
    solve: Callable[[PyTree], PyTree],
    steps: int = 20,
    initial_step: float = 1.0,
    max_halvings: int = 12,
    gtol: float = 1e-8,
    ftol: float = 1e-7,
    rtol: float = 1e-6,
) -> RefineResult:
    """Descend the validation loss in log-hyperparameter space from ``hyperparams``, eq. (1).

    Args:
      problem, val, solve: as :func:`implicit`.
      hyperparams: the start (positive leaves), e.g. a grid's best cell.
      steps: accepted steps at most.
      initial_step: the first trial's largest change of a log-hyperparameter.
      max_halvings: rejected trials in a row before stopping.
      gtol: stop when :math:`\\lVert\\nabla_u V\\rVert_\\infty \\le` ``gtol``.
      ftol: stop after an accepted step that lowers :math:`V` by less than ``ftol * |V|``.
      rtol: accuracy asked of each implicit hypergradient (a refusal stops with an error).

    Returns:
      A :class:`RefineResult`.

    Raises:
      ValueError: a non-positive hyperparameter; HypergradRefused: an inner solve along the way
        did not converge.
    """
    _problem.check_problem(problem, hyperparams)
    _problem.check_validation(val, problem.params0)
    u0, unravel = ravel_pytree(hyperparams)
    if not bool(jnp.all(u0 > 0)):
        raise ValueError(f"hyperparams must be positive to refine in log space; got {u0}")
    cfg = imp.ImplicitConfig(rtol=rtol)
    core = jax.jit(lambda hp: imp.implicit_core(problem, val, hp, solve(hp), cfg))

    def evaluate(u):
        res = core(unravel(jnp.exp(jnp.asarray(u, u0.dtype))))
        error = imp.refusal(res, cfg)
        if error is not None:
            raise error
        g = np.exp(u) * np.asarray(ravel_pytree(res.hypergrad)[0], np.float64)
        return float(res.value), res, g

    u = np.log(np.asarray(u0, np.float64))
    f, res, g = evaluate(u)
    solves, path, iters = 1, [(f, unravel(jnp.exp(u)))], 0
    B = np.eye(u.size) * initial_step / max(float(np.max(np.abs(g))), 1e-300)
    while iters < steps and float(np.max(np.abs(g))) > gtol:
        d, alpha = -B @ g, 1.0
        for _ in range(max_halvings):
            trial = u + alpha * d
            f_new, res_new, g_new = evaluate(trial)
            solves += 1
            if f_new <= f + 1e-4 * alpha * float(g @ d):  # (1)
                break
            alpha /= 2
        else:
            break
        B = _bfgs(B, trial - u, g_new - g)
        gain = f - f_new
        u, f, res, g = trial, f_new, res_new, g_new
        path.append((f, unravel(jnp.exp(u))))
        iters += 1
        if gain < ftol * abs(f):
            break
    final = unravel(jnp.exp(jnp.asarray(u, u0.dtype)))
    return RefineResult(final, f, res.hypergrad, tuple(path), solves, iters)
