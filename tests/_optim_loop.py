"""A minimal jitted ``lax.scan`` loop that drives an optax transformation, for the optim tests.

``gradlab.fit`` is the real loop (``gradlab/train/``); this one is kept deliberately small so the
optimizer tests depend only on optax and ``gradlab.optim``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
import optax


def run(
    grad: Callable,
    opt: optax.GradientTransformation,
    params,
    steps: int,
    *args,
    metric: Callable | None = None,
):
    """``steps`` updates of ``opt`` with gradient ``grad(params, *args)``.

    Returns ``(params, state, history)`` where ``history[k] = metric(params_k+1, state_k+1)``
    (``None`` without a metric). Call it under ``jax.jit`` (``steps`` static) or let
    :func:`compiled` cache one.
    """

    def body(carry, _):
        p, s = carry
        u, s = opt.update(grad(p, *args), s, p)
        p = optax.apply_updates(p, u)
        return (p, s), (None if metric is None else metric(p, s))

    (p, s), hist = jax.lax.scan(body, (params, opt.init(params)), None, length=steps)
    return p, s, hist


def compiled(grad: Callable, make_opt: Callable, steps: int, metric: Callable | None = None):
    """``jit(lambda params, hyper, *args: run(grad, make_opt(*hyper), params, steps, *args))``.

    The optimizer is built inside the trace from ``hyper`` (a tuple of arrays), so the same
    compiled function serves several hyperparameter values and can be ``vmap``-ed over them.
    """

    def f(params, hyper, *args):
        return run(grad, make_opt(*hyper), params, steps, *args, metric=metric)

    jitted = jax.jit(f)

    def call(params, hyper, *args):
        # numpy scalars are strongly typed: 0.1, np.float64(0.1) and a 0-d array share a trace.
        return jitted(params, tuple(np.asarray(h) for h in hyper), *args)

    call.jitted = jitted
    return call
