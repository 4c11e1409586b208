r"""Inner solvers for the implicit and finite-difference witnesses: ``solve(hp) -> params``.

* :func:`fit_solver`: ``steps`` of any optax optimizer through :func:`gradlab.fit` (FISTA's
  iterate when the optimizer is ``gradlab.optim.fista``; ISTA / FISTA for an L1 problem).
* :func:`newton_solver`: Newton's method with the dense Hessian for a smooth problem,
  :math:`\theta \leftarrow \theta - H^{-1}\nabla_\theta L`, quadratic convergence: the exactly
  solved inner problem the finite-difference witness needs (small :math:`d`).

Both are traceable, so they ``jit`` and ``vmap`` over hyperparameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.flatten_util import ravel_pytree

from gradlab.hypergrad._problem import InnerProblem
from gradlab.hypergrad._unrolled import current_iterate
from gradlab.train import fit

PyTree = Any


def fit_solver(
    problem: InnerProblem,
    optimizer: optax.GradientTransformation | Callable[[PyTree], optax.GradientTransformation],
    steps: int,
    **fit_kwargs,
) -> Callable[[PyTree], PyTree]:
    """``solve(hp)``: ``gradlab.fit`` of ``problem.loss`` from ``params0`` for ``steps`` steps.

    Args:
      problem: the inner problem.
      optimizer: an optax transformation or ``optimizer(hp)`` (an L1 strength or learning rate
        read from the hyperparameters).
      steps: optimizer steps.
      **fit_kwargs: passed to ``gradlab.fit`` (e.g. ``unroll``).

    Returns:
      ``solve(hp) -> params``; a diverged fit returns NaN parameters, so implicit refuses it.
    """

    def solve(hp):
        opt = optimizer if isinstance(optimizer, optax.GradientTransformation) else optimizer(hp)
        res = fit(
            lambda p, *d: problem.loss(p, hp, *d),
            problem.params0,
            problem.data,
            opt,
            steps,
            record_every=steps,
            **fit_kwargs,
        )
        params = current_iterate(res.params, res.opt_state)
        return jax.tree.map(lambda x: jnp.where(res.diverged, jnp.nan, x), params)

    return solve


def newton_solver(problem: InnerProblem, steps: int = 30) -> Callable[[PyTree], PyTree]:
    """``solve(hp)``: ``steps`` Newton iterations from ``params0`` (smooth problems only).

    Args:
      problem: a smooth inner problem (``l1`` None) with a positive definite Hessian.
      steps: Newton iterations (quadratic convergence: 20-30 reach round-off from a sane start).

    Returns:
      ``solve(hp) -> params``.
    """
    if problem.l1 is not None:
        raise ValueError(
            "newton_solver needs a smooth problem; got problem.l1 set (use fit_solver)"
        )
    theta0, unravel = ravel_pytree(problem.params0)

    def solve(hp):
        def f(t):
            return problem.loss(unravel(t), hp, *problem.data)

        def step(t, _):
            g, H = jax.grad(f)(t), jax.hessian(f)(t)
            return t - jnp.linalg.solve(H, g), None

        theta, _ = lax.scan(step, theta0, None, length=steps)
        return unravel(theta)

    return solve
