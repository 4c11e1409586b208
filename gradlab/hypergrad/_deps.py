r"""Which inputs a function's output depends on, read from its jaxpr (no evaluation).

A hyperparameter closed over as a Python float is a constant of the trace: ``jax.grad`` returns
an exact zero for the array the user *thinks* is the hyperparameter, and nothing complains. The
same silence hides a validation loss that never reads the parameters. This module traces ``fn``
once with :func:`jax.make_jaxpr` and propagates, equation by equation, the set of flat inputs
each variable depends on:

.. math::  \mathrm{dep}(v) = \bigcup_{u \in \mathrm{inputs}(\mathrm{eqn}(v))}
           \mathrm{dep}(u)                                                                   \tag{1}

Calls with one inner jaxpr whose inputs map one to one (``jit``, ``checkpoint``,
``custom_jvp_call``) are followed inside; any other equation with inner jaxprs (``scan``,
``while``, ``cond``) is treated conservatively (every output depends on every input). The answer
therefore over-approximates dependence: "does not depend" is a proof, "depends" is not.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from jax.extend import core as jcore

_FOLLOWED = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _inner(eqn):
    """The inner jaxpr of a call whose inputs map one to one to the equation's, else None."""
    for name in _FOLLOWED:
        sub = eqn.params.get(name)
        if sub is None:
            continue
        jaxpr = getattr(sub, "jaxpr", sub)
        if isinstance(jaxpr, jcore.Jaxpr) and len(jaxpr.invars) == len(eqn.invars):
            if len(jaxpr.outvars) == len(eqn.outvars):
                return jaxpr
    return None


def _propagate(jaxpr, deps_in: list[frozenset]) -> list[frozenset]:
    """Eq. (1) through ``jaxpr`` given the dependence sets of its inputs; sets of its outputs."""
    env: dict = {}
    for v, d in zip(jaxpr.invars, deps_in, strict=True):
        env[v] = d

    def read(v) -> frozenset:
        if isinstance(v, jcore.Literal):
            return frozenset()
        return env.get(v, frozenset())

    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        sub = _inner(eqn)
        if sub is not None:
            outs = _propagate(sub, ins)
        else:
            union = frozenset().union(*ins)
            outs = [union] * len(eqn.outvars)
        for v, d in zip(eqn.outvars, outs, strict=True):
            if not isinstance(v, jcore.DropVar):
                env[v] = d
    return [read(v) for v in jaxpr.outvars]


def dependent_leaves(fn: Callable, args: tuple, argnum: int) -> list[bool]:
    """For each leaf of ``args[argnum]``, whether some output of ``fn(*args)`` may depend on it.

    Args:
      fn: a traceable function.
      args: its arguments.
      argnum: which argument's leaves to ask about.

    Returns:
      One bool per leaf of ``args[argnum]`` (``jax.tree.leaves`` order); ``False`` is a proof of
      independence, ``True`` a conservative "maybe".

    Examples:
      >>> import jax.numpy as jnp
      >>> dependent_leaves(lambda p, hp: p * hp["a"], (jnp.ones(2), {"a": 1.0, "b": 2.0}), 1)
      [True, False]
    """
    closed = jax.make_jaxpr(fn)(*args)
    counts = [len(jax.tree.leaves(a)) for a in args]
    start = sum(counts[:argnum])
    deps_in = [
        frozenset([i - start]) if start <= i < start + counts[argnum] else frozenset()
        for i in range(sum(counts))
    ]
    outs = _propagate(closed.jaxpr, deps_in)
    used = frozenset().union(*outs) if outs else frozenset()
    return [i in used for i in range(counts[argnum])]
