r"""Hypergradients over a sweep grid in one compiled call, and refinement from its best cell.

:func:`hypergrad_sweep` runs ``implicit_core`` (or ``unrolled_core``) as the ``train`` of
:func:`gradlab.sweep`: ``jit(vmap(...))`` over every configuration, one compiled call per
chunk, and the :class:`gradlab.SweepResult` gains one column ``d_<name>`` per hyperparameter
(:math:`\partial V / \partial \lambda_{name}`) beside ``val``, ``inner_residual`` and
``converged`` (a row that the implicit witness would refuse is flagged, never silently kept).

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
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab.hypergrad import _implicit as imp
from gradlab.hypergrad import _problem
from gradlab.hypergrad import _unrolled as unr
from gradlab.sweeps import SweepResult, sweep

PyTree = Any
METHODS = ("implicit", "unrolled")


def _row_train(problem, val, method, solve, cfg, unroll):
    def train(hp, key):
        hp = {k: v for k, v in hp.items() if k != "seed"}
        if method == "implicit":
            res = imp.implicit_core(problem, val, hp, solve(hp), cfg)
            ok = res.converged
        else:
            optimizer, steps, block = unroll
            res = unr.unrolled_core(problem, val, hp, optimizer, steps, block)
            ok = ~res.diverged
        out = {"val": res.value, "inner_residual": res.inner_residual, "converged": ok}
        out |= {f"d_{k}": g for k, g in res.hypergrad.items()}
        out["diverged"] = ~jnp.isfinite(res.value)
        return out

    return train


def hypergrad_sweep(
    problem: _problem.InnerProblem,
    val: Callable[[PyTree], jax.Array],
    grid: Mapping[str, Any],
    *,
    method: str = "implicit",
    solve: Callable[[PyTree], PyTree] | None = None,
    optimizer: Any = None,
    steps: int | None = None,
    block: int | None = None,
    rtol: float = 1e-6,
    **sweep_kwargs,
) -> SweepResult:
    """The hypergradient at every configuration of ``grid``, one compiled ``jit(vmap)`` call.

    Args:
      problem: the :class:`InnerProblem`; its ``loss`` reads ``hyperparams[name]`` for each
        grid name (a dict of scalars).
      val: ``val(params) -> scalar``.
      grid: name -> 1-D values, as :func:`gradlab.sweep` (a ``"seed"`` name is passed on to
        ``sweep`` and not to the problem).
      method: ``"implicit"`` (needs ``solve``) or ``"unrolled"`` (needs ``optimizer``, ``steps``).
      solve, optimizer, steps, block, rtol: as :func:`implicit` / :func:`unrolled`.
      **sweep_kwargs: passed to :func:`gradlab.sweep` (``combine``, ``chunk_size``, ...).

    Returns:
      A ``SweepResult`` with columns ``val``, ``d_<name>`` per hyperparameter,
      ``inner_residual``, ``converged`` and ``diverged``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if not isinstance(grid, Mapping) or not grid:
        raise TypeError(f"grid must be a non-empty mapping name -> values; got {grid!r}")
    probe = {k: jnp.asarray(np.asarray(v)[0], float) for k, v in grid.items() if k != "seed"}
    _problem.check_problem(problem, probe, require_used=method == "implicit")
    _problem.check_validation(val, problem.params0)
    cfg = imp.ImplicitConfig(rtol=rtol)
    unroll = None
    if method == "implicit":
        if not callable(solve):
            raise TypeError(f"method='implicit' needs solve(hyperparams) -> params; got {solve!r}")
    else:
        block = unr.check_unroll_args(steps, block)
        if optimizer is None:
            raise TypeError("method='unrolled' needs optimizer (and steps)")
        unr.check_optimizer_depends(problem, probe, optimizer)
        unroll = (optimizer, steps, block)
    sweep_kwargs.setdefault("progress", False)
    train = _row_train(problem, val, method, solve, cfg, unroll)
    return sweep(train, grid, **sweep_kwargs)


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
