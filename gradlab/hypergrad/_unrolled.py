r"""Unrolled reverse mode through :func:`gradlab.fit`, rematerialized block by block.

:math:`T` optimizer steps :math:`\theta_{t+1} = \Phi(\theta_t, s_t, \lambda)` run as
:math:`K = \lfloor T/B \rfloor` blocks of :math:`B` steps (one ``gradlab.fit`` call each,
resumed from the previous block's parameters *and optimizer state*) plus a remainder block;
:math:`\nabla_\lambda V(\theta_T)` is ``jax.grad`` of the whole. Each block is wrapped in
``jax.checkpoint``, so the backward pass stores only the :math:`K` block boundaries
:math:`(\theta, s)` and recomputes one block at a time, holding its :math:`B` steps' residuals:

.. math::  \text{memory} \approx (K + B)\,M, \qquad B = \lceil\sqrt{T}\,\rceil \;\Rightarrow\;
           \text{memory} = O(\sqrt{T}\,M)                                              \tag{1}

with :math:`M` the bytes of one step's state, for one extra forward pass (the recomputation;
1.4x the time of plain reverse mode at T = 10,000 in ``benchmarks/RESULTS.md``).
``block=steps`` is plain reverse mode, :math:`O(T M)`. Measured with
``compiled.memory_analysis()`` in ``benchmarks/bench_hypergrad.py``: 17 / 34 / 88 KiB at
T = 100 / 1000 / 10000 against 49 / 401 / 3926 KiB plain (ridge, d = 50).

The unrolled hypergradient is exact for the *truncated* map :math:`\lambda \mapsto
V(\theta_T(\lambda))`; it tends to the implicit one as :math:`T \to \infty` for a contracting
inner iteration. ``inner_residual`` (the final fixed-point residual) says how far
:math:`\theta_T` is from the optimum; a large one is a truncated unroll.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, TypeAlias

import jax
import jax.numpy as jnp
import optax
from jax import lax

from gradlab.hypergrad import _problem
from gradlab.hypergrad import _stationarity as st
from gradlab.hypergrad._deps import dependent_leaves
from gradlab.hypergrad._findings import Finding, HypergradRefused
from gradlab.optim import fista_iterate
from gradlab.train import fit

PyTree = Any
Optimizer: TypeAlias = (
    optax.GradientTransformation | Callable[[PyTree], optax.GradientTransformation]
)


class UnrolledResult(NamedTuple):
    """The unrolled hypergradient (a pytree: vmaps).

    Attributes:
      value: :math:`V(\\theta_T)`.
      hypergrad: :math:`\\nabla_\\lambda V(\\theta_T(\\lambda))`, shaped like the hyperparameters.
      params: :math:`\\theta_T` (FISTA's iterate when the optimizer is ``gradlab.optim.fista``).
      inner_residual: fixed-point residual at :math:`\\theta_T` (``_stationarity`` eq. (1)).
      diverged: some block of ``fit`` diverged (and froze).
    """

    value: jax.Array
    hypergrad: PyTree
    params: PyTree
    inner_residual: jax.Array
    diverged: jax.Array


def default_block(steps: int) -> int:
    """:math:`B = \\lceil\\sqrt{T}\\,\\rceil`, eq. (1)."""
    return max(1, math.isqrt(steps - 1) + 1) if steps > 1 else 1


def _resumed(optimizer: optax.GradientTransformation, state) -> optax.GradientTransformation:
    """``optimizer`` whose ``init`` returns ``state``: ``fit`` continues where a block ended."""
    return optax.GradientTransformation(lambda _: state, optimizer.update)


def current_iterate(params: PyTree, state: optax.OptState) -> PyTree:
    """FISTA's iterate :math:`x_k` when ``state`` holds one (its ``params`` are the extrapolated
    point), else ``params``."""
    try:
        return fista_iterate(state)
    except ValueError:
        return params


def unroll(
    problem: _problem.InnerProblem, hp: PyTree, optimizer: Optimizer, steps: int, block: int
) -> tuple[PyTree, jax.Array]:
    """:math:`\\theta_T(\\lambda)` through checkpointed blocks of ``fit``; (params, diverged)."""
    opt = optimizer if isinstance(optimizer, optax.GradientTransformation) else optimizer(hp)

    def loss(params, *data):
        return problem.loss(params, hp, *data)

    def run_block(carry, length):
        params, state = carry
        res = fit(
            loss, params, problem.data, _resumed(opt, state), length, record_every=length, unroll=1
        )
        return (res.params, res.opt_state), res.diverged

    carry = (problem.params0, opt.init(problem.params0))
    n_blocks, rem = divmod(steps, block)
    body = jax.checkpoint(lambda c, _: run_block(c, block))
    carry, div = lax.scan(body, carry, None, length=n_blocks)
    diverged = jnp.any(div)
    if rem:
        carry, d = jax.checkpoint(lambda c: run_block(c, rem))(carry)
        diverged = diverged | d
    return current_iterate(*carry), diverged


def unrolled_core(problem, val, hp, optimizer, steps: int, block: int) -> UnrolledResult:
    """The unrolled hypergradient, traceable (``jit``/``vmap``); no checks, no raising."""

    def outer(h):
        params, diverged = unroll(problem, h, optimizer, steps, block)
        return val(params), (params, diverged)

    (value, (params, diverged)), g = jax.value_and_grad(outer, has_aux=True)(hp)
    residual = st.fixed_point_residual(st.flatten(problem, params), hp)
    return UnrolledResult(value, g, params, residual, diverged)


def check_optimizer_depends(problem, hp, optimizer) -> None:
    """Every hyperparameter must reach one step of the loop (the loss, ``l1`` or the optimizer)."""
    fixed = isinstance(optimizer, optax.GradientTransformation)
    opt_fn = (lambda h: optimizer) if fixed else optimizer

    def one_step(params, h):
        opt = opt_fn(h)
        g = jax.grad(problem.loss)(params, h, *problem.data)
        updates, _ = opt.update(g, opt.init(params), params)
        return updates, (None if problem.l1 is None else problem.l1(h))

    used = dependent_leaves(one_step, (problem.params0, hp), 1)
    where = "one step of the unrolled loop (problem.loss, problem.l1, optimizer)"
    _problem.check_used(used, hp, where)


def check_unroll_args(steps, block) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a Python int >= 1 (the unroll length); got {steps!r}")
    if block is None:
        return default_block(steps)
    if isinstance(block, bool) or not isinstance(block, int) or not 1 <= block <= steps:
        raise ValueError(f"block must be a Python int in [1, steps={steps}] or None; got {block!r}")
    return block


def unrolled(
    problem: _problem.InnerProblem,
    val: Callable[[PyTree], jax.Array],
    hyperparams: PyTree,
    *,
    optimizer: Optimizer,
    steps: int,
    block: int | None = None,
) -> UnrolledResult:
    r"""The hypergradient of :math:`V(\theta_T(\lambda))` by reverse mode through ``fit``.

    Args:
      problem: the :class:`InnerProblem`; ``fit`` trains its smooth ``loss`` from ``params0``.
      val: ``val(params) -> scalar``.
      hyperparams: pytree of floating array leaves.
      optimizer: an optax transformation, or ``optimizer(hyperparams) -> transformation`` when
        a hyperparameter is a learning rate or an L1 strength (``gradlab.optim.ista``).
      steps: :math:`T`, the unroll length (static).
      block: :math:`B` of eq. (1); default :math:`\lceil\sqrt T\rceil`; ``steps`` for plain
        reverse mode.

    Returns:
      An :class:`UnrolledResult`.

    Raises:
      HypergradRefused: the inner run diverged (``fit`` froze it): no hypergradient.
      TypeError, ValueError: bad arguments, naming them.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from gradlab.hypergrad import InnerProblem, unrolled
      >>> loss = lambda w, lam: 0.5 * (w - 1.0) ** 2 + 0.5 * lam * w**2
      >>> prob = InnerProblem(loss, jnp.asarray(0.0))
      >>> res = unrolled(prob, lambda w: w, jnp.asarray(1.0), optimizer=optax.sgd(0.5), steps=200)
      >>> round(float(res.hypergrad), 10)            # d/dlam 1/(1+lam) = -1/4
      -0.25
    """
    block = check_unroll_args(steps, block)
    _problem.check_problem(problem, hyperparams, require_used=False)
    _problem.check_validation(val, problem.params0)
    if not (isinstance(optimizer, optax.GradientTransformation) or callable(optimizer)):
        raise TypeError(
            "optimizer must be an optax.GradientTransformation or a callable "
            f"optimizer(hyperparams) -> GradientTransformation; got {optimizer!r}"
        )
    check_optimizer_depends(problem, hyperparams, optimizer)
    result = jax.jit(lambda h: unrolled_core(problem, val, h, optimizer, steps, block))(hyperparams)
    if bool(result.diverged) or not bool(jnp.isfinite(result.value)):
        raise HypergradRefused(
            f"the inner problem diverged within steps={steps} (gradlab.fit froze it): the "
            "unrolled hypergradient is undefined; lower the optimizer's learning rate",
            Finding.INNER_DIVERGED,
            result,
        )
    return result
