r"""Implicit differentiation at the inner optimum: the implicit function theorem with
Hessian-vector products and an iterative linear solve, refusing to answer off the optimum.

At :math:`\theta^\star(\lambda)` the restricted stationarity ``_stationarity`` eq. (2) holds,
:math:`F_S(\theta^\star(\lambda), \lambda) = 0`; differentiating,
:math:`A\,\partial_\lambda\theta^\star = -\partial_\lambda F_S` with :math:`A` of eq. (3), so

.. math::  \nabla_\lambda V = -\big(\partial_\lambda F_S\big)^{\!\top} v, \qquad
           A\,v = m \odot \nabla_\theta V(\theta^\star)                                \tag{1}

one linear solve (CG, :math:`A` symmetric; GMRES on request) with Hessian-vector products and
one vector-Jacobian product in :math:`\lambda`. For a smooth problem :math:`m = 1`,
:math:`A = H` and :math:`\partial_\lambda F = \nabla^2_{\lambda\theta} L`; for the lasso
:math:`\partial_\lambda F_S = m \odot \partial_\lambda \rho \odot \mathrm{sign}\,\theta`, the
classical :math:`\partial_\lambda \theta_S = -H_{SS}^{-1}\mathrm{sign}(\theta_S)`.

How far off is the answer when :math:`\hat\theta` only approximates :math:`\theta^\star`? One
Newton step on (2), :math:`\tilde\theta = \hat\theta - m \odot A^{-1}F_S(\hat\theta)`, removes
the first-order error of :math:`\hat\theta` (exact for a quadratic), so

.. math::  e = \lVert \nabla_\lambda V|_{\hat\theta} - \nabla_\lambda V|_{\tilde\theta}
           \rVert_2                                                                   \tag{2}

estimates the error the inner solve leaves in the hypergradient (two more solves). The answer
is refused when :math:`e > \mathrm{rtol}\,\lVert\nabla_\lambda V\rVert + \mathrm{atol}` or the
relative residual of (1), :math:`\lVert Av - b\rVert / \lVert b\rVert`, exceeds ``rtol``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.sparse.linalg as jsl
from jax.flatten_util import ravel_pytree

from gradlab.hypergrad import _problem
from gradlab.hypergrad import _stationarity as st
from gradlab.hypergrad._findings import Finding, HypergradRefused

PyTree = Any
LINEAR_SOLVERS = ("cg", "gmres")


class ImplicitResult(NamedTuple):
    """The implicit hypergradient and the numbers that vouch for it (a pytree: vmaps).

    Attributes:
      value: :math:`V(\\hat\\theta)`.
      hypergrad: eq. (1), shaped like the hyperparameters.
      params: :math:`\\hat\\theta`, the inner solution used.
      inner_residual: :math:`\\lVert r \\rVert` of ``_stationarity`` eq. (1).
      linear_residual: relative residual of the solve in (1).
      error_estimate: :math:`e` of eq. (2).
      tight: number of coordinates at a support change (``_stationarity``); > 0: non-smooth.
      support_size: :math:`|S|`.
      converged: both tests of the module docstring pass.
    """

    value: jax.Array
    hypergrad: PyTree
    params: PyTree
    inner_residual: jax.Array
    linear_residual: jax.Array
    error_estimate: jax.Array
    tight: jax.Array
    support_size: jax.Array
    converged: jax.Array


@dataclasses.dataclass(frozen=True)
class ImplicitConfig:
    """Static settings of :func:`implicit_core`."""

    rtol: float = 1e-6
    atol: float = 0.0
    linear_solver: str = "cg"
    maxiter: int | None = None
    tight_tol: float = 1e-9


def _solve(matvec, b, cfg: ImplicitConfig):
    # a thousandth of the answer's tolerance, but never below what the dtype can reach
    tol = max(cfg.rtol * 1e-3, 8 * float(jnp.finfo(b.dtype).eps))
    if cfg.linear_solver == "cg":
        x, _ = jsl.cg(matvec, b, tol=tol, atol=0.0, maxiter=cfg.maxiter)
    else:
        x, _ = jsl.gmres(matvec, b, tol=tol, atol=0.0, maxiter=cfg.maxiter, solve_method="batched")
    return x


def _rhs(flat, val, mask, at):
    r""":math:`b = m \odot \nabla_\theta V` at ``at``, eq. (1)."""
    return mask * ravel_pytree(jax.grad(val)(flat.unravel(at)))[0]


def _relative_residual(matvec, x, b):
    return jnp.linalg.norm(matvec(x) - b) / jnp.maximum(jnp.linalg.norm(b), jnp.finfo(b.dtype).tiny)


def _pull(flat, hp, mask, at, v):
    r""":math:`-(\partial_\lambda F_S)^\top v` at ``at``, eq. (1)."""
    F = st.restricted_map(flat, mask)
    _, pullback = jax.vjp(lambda h: F(at, h), hp)
    return jax.tree.map(jnp.negative, pullback(v)[0])


def implicit_core(
    problem: _problem.InnerProblem, val: Callable, hp: PyTree, params: PyTree, cfg: ImplicitConfig
) -> ImplicitResult:
    r"""Eqs. (1)-(2) at ``params``, traceable (``jit``/``vmap``); no checks, no raising.

    Three solves in two loops: :math:`A v = b` and the Newton step :math:`A\delta = F_S`
    batched at :math:`\hat\theta`, then :math:`\tilde A \tilde v = \tilde b` at
    :math:`\tilde\theta`.
    """
    flat = st.flatten(problem, params)
    mask = st.support(flat, hp)
    theta = flat.theta
    b = _rhs(flat, val, mask, theta)
    matvec = st.system(flat, hp, mask)
    rhs = jnp.stack([b, st.restricted_map(flat, mask)(theta, hp)])
    v, newton = jax.vmap(lambda r: _solve(matvec, r, cfg))(rhs)
    lin_res = _relative_residual(matvec, v, b)
    hg = _pull(flat, hp, mask, theta, v)
    theta2 = theta - mask * newton  # (2)
    b2 = _rhs(flat, val, mask, theta2)
    v2 = _solve(st.system(flat, hp, mask, theta2), b2, cfg)
    hg2 = _pull(flat, hp, mask, theta2, v2)
    diff = jax.tree.map(jnp.subtract, hg, hg2)
    err = ravel_pytree(diff)[0]
    err = jnp.where(jnp.all(jnp.isfinite(err)), jnp.linalg.norm(err), jnp.inf)
    norm = jnp.linalg.norm(ravel_pytree(hg)[0])
    converged = (err <= cfg.rtol * norm + cfg.atol) & (lin_res <= cfg.rtol)
    return ImplicitResult(
        value=val(params),
        hypergrad=hg,
        params=params,
        inner_residual=st.fixed_point_residual(flat, hp),
        linear_residual=lin_res,
        error_estimate=err,
        tight=st.tight(flat, hp, mask, cfg.tight_tol),
        support_size=jnp.sum(mask).astype(jnp.int32),
        converged=converged & jnp.isfinite(norm),
    )


def check_config(cfg: ImplicitConfig) -> None:
    if cfg.linear_solver not in LINEAR_SOLVERS:
        raise ValueError(
            f"linear_solver must be one of {LINEAR_SOLVERS}; got {cfg.linear_solver!r}"
        )
    if not cfg.rtol > 0:
        raise ValueError(f"rtol must be > 0 (the accuracy the answer needs); got {cfg.rtol}")


def refusal(result: ImplicitResult, cfg: ImplicitConfig) -> HypergradRefused | None:
    """The error to raise for a result that must not be returned, or None."""
    params_ok = all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(result.params))
    if not params_ok:
        return HypergradRefused(
            "solve(hyperparams) returned non-finite parameters: the inner problem diverged "
            "(lower the inner learning rate or check the training loss)",
            Finding.INNER_DIVERGED,
            result,
        )
    err, res = float(result.error_estimate), float(result.linear_residual)
    need = cfg.rtol * float(jnp.linalg.norm(ravel_pytree(result.hypergrad)[0])) + cfg.atol
    if not res <= cfg.rtol:
        return HypergradRefused(
            f"the linear solve of the implicit function theorem stopped at relative residual "
            f"{res:.3g} > rtol={cfg.rtol:.3g} (linear_solver={cfg.linear_solver!r}, "
            f"maxiter={cfg.maxiter}); raise maxiter or check that the inner Hessian is "
            "positive definite",
            Finding.LINEAR_SOLVE_NOT_CONVERGED,
            result,
        )
    if not err <= need:
        return HypergradRefused(
            f"solve(hyperparams) has not converged to the tolerance the answer needs: the inner "
            f"fixed-point residual is {float(result.inner_residual):.3g}, and one Newton step "
            f"moves the hypergradient by {err:.3g} > rtol*|hypergrad| + atol = {need:.3g}. "
            "Solve the inner problem more accurately (more steps, a smaller tolerance)",
            Finding.INNER_NOT_CONVERGED,
            result,
        )
    return None


def implicit(
    problem: _problem.InnerProblem,
    val: Callable[[PyTree], jax.Array],
    hyperparams: PyTree,
    *,
    solve: Callable[[PyTree], PyTree],
    rtol: float = 1e-6,
    atol: float = 0.0,
    linear_solver: str = "cg",
    maxiter: int | None = None,
) -> ImplicitResult:
    r"""The hypergradient :math:`\nabla_\lambda V(\theta^\star(\lambda))` by eq. (1).

    Args:
      problem: the :class:`InnerProblem` (smooth, or with ``l1`` for the lasso / elastic net).
      val: ``val(params) -> scalar``, the validation loss.
      hyperparams: pytree of floating array leaves :math:`\lambda`.
      solve: traceable ``solve(hyperparams) -> params`` returning the inner optimum (a closed
        form, :func:`fit_solver`, :func:`newton_solver`).
      rtol, atol: the accuracy the answer needs: eq. (2) must be below
        ``rtol * |hypergrad| + atol`` and the linear solve's relative residual below ``rtol``.
      linear_solver: ``"cg"`` (default; :math:`A` is symmetric) or ``"gmres"``.
      maxiter: iteration cap of the linear solves (``None``: JAX's default, 10 x size).

    Returns:
      An :class:`ImplicitResult` with ``converged`` true.

    Raises:
      HypergradRefused: (a ``ValueError``) when the inner solve diverged, or has not converged
        to the needed tolerance, or the linear solve has not; ``.finding`` says which and
        ``.result`` holds the numbers.
      TypeError, ValueError: bad arguments (a hyperparameter that is not an array leaf or that
        the loss ignores; a validation loss that ignores the parameters).

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradlab.hypergrad import InnerProblem, implicit
      >>> X = jnp.eye(3); y = jnp.array([1.0, 2.0, 3.0])
      >>> loss = lambda w, hp, X, y: 0.5 * jnp.sum((X @ w - y) ** 2) + 0.5 * hp * (w @ w)
      >>> prob = InnerProblem(loss, jnp.zeros(3), (X, y))
      >>> solve = lambda lam: y / (1 + lam)          # the closed form
      >>> res = implicit(prob, lambda w: jnp.sum(w), jnp.asarray(1.0), solve=solve)
      >>> round(float(res.hypergrad), 12)            # d/dlam sum(y)/(1+lam) = -6/4
      -1.5
    """
    cfg = ImplicitConfig(rtol=rtol, atol=atol, linear_solver=linear_solver, maxiter=maxiter)
    check_config(cfg)
    _problem.check_problem(problem, hyperparams)
    _problem.check_validation(val, problem.params0)
    if not callable(solve):
        raise TypeError(f"solve must be callable as solve(hyperparams) -> params; got {solve!r}")
    result = _compiled(problem, val, solve, cfg)(hyperparams)
    error = refusal(result, cfg)
    if error is not None:
        raise error
    return result


def _compiled(problem, val, solve, cfg):
    def run(hp):
        return implicit_core(problem, val, hp, solve(hp), cfg)

    return jax.jit(run)


def implicit_at(
    problem: _problem.InnerProblem,
    val: Callable[[PyTree], jax.Array],
    hyperparams: PyTree,
    params: PyTree,
    *,
    rtol: float = 1e-6,
    linear_solver: str = "cg",
    maxiter: int | None = None,
) -> ImplicitResult:
    """Eq. (1) at given inner parameters, with its numbers; traceable and never refusing.

    For algorithms that use approximate hypergradients on purpose (HOAG's inexact inner solves,
    ``papers/hoag``) and for ``jit``/``vmap``: read ``converged``, ``error_estimate`` and the
    residuals instead of relying on a refusal. No argument checks (call :func:`implicit` once
    for those).

    Returns:
      An :class:`ImplicitResult`.
    """
    cfg = ImplicitConfig(rtol=rtol, linear_solver=linear_solver, maxiter=maxiter)
    return implicit_core(problem, val, hyperparams, params, cfg)
