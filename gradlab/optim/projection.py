r"""Projected steps: any optax update followed by a Euclidean projection onto a convex set.

For a closed convex set :math:`C` with projection
:math:`P_C(z) = \arg\min_{x\in C}\lVert x - z\rVert_2`, the projected update of an inner
transformation (``optax.sgd``, ``optax.momentum``, ...) with updates :math:`u_t` is

.. math::  x_{t+1} = P_C(x_t + u_t)                                        \tag{1}
.. math::  u^+_t = x_{t+1} - x_t                                          \tag{2}

With ``optax.sgd(eta)`` this is projected gradient descent,
:math:`x_{t+1} = P_C(x_t - \eta\nabla f(x_t))`, which converges for :math:`\eta \le 1/L`
like gradient descent does on unconstrained problems. The projection is any
``optax.projections`` function (``projection_simplex``, ``projection_box``,
``projection_l2_ball``, ``projection_non_negative``, ...), with its extra arguments bound by
``functools.partial`` or a lambda; it sees the whole params tree (optax's projections treat
a tree as one vector: ``projection_simplex({"a": .., "b": ..})`` projects the concatenation).
To constrain some leaves only, wrap :func:`project` in ``optax.masked`` or write the
projection for the tree, e.g. ``lambda p: {"w": projection_simplex(p["w"]), "b": p["b"]}``.

``optax.apply_updates(params, updates)`` computes :math:`x_t + (x_{t+1} - x_t)`, which
equals :math:`x_{t+1}` up to one rounding; every step projects again, so the rounding never
accumulates.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import optax

from gradlab.optim._learning_rate import carrying

Projection = Callable[[optax.Params], optax.Params]


def project(projection: Projection) -> optax.GradientTransformation:
    r"""Turn incoming updates into a step onto a convex set: :math:`u^+ = P_C(x + u) - x`.

    .. math::  x_{t+1} = P_C(x_t + u_t),\qquad u^+_t = x_{t+1} - x_t

    Args:
      projection: :math:`P_C`, a function ``params -> params`` of the same tree (e.g.
        ``optax.projections.projection_simplex``).

    Returns:
      An ``optax.GradientTransformation`` (state ``optax.EmptyState``) that needs ``params``.
    """
    if not callable(projection):
        raise TypeError(
            "projection must be a callable params -> params (e.g. "
            f"optax.projections.projection_simplex); got {type(projection).__name__}"
        )

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("project needs params in update(updates, state, params)")
        z = jax.tree.map(lambda p, u: p + u, params, updates)
        x = projection(z)  # (1)
        if jax.tree.structure(x) != jax.tree.structure(params):
            raise ValueError(
                f"projection must return the tree structure of params, "
                f"{jax.tree.structure(params)}; got {jax.tree.structure(x)}"
            )
        return jax.tree.map(lambda a, p: (a - p).astype(p.dtype), x, params), state  # (2)

    return optax.GradientTransformation(init_fn, update_fn)


def projected(
    inner: optax.GradientTransformation, projection: Projection
) -> optax.GradientTransformation:
    r"""The inner transformation's step, projected: ``optax.chain(inner, project(projection))``.

    .. math::  x_{t+1} = P_C\big(x_t + \mathrm{inner}(g_t)\big)

    Args:
      inner: an optax transformation producing the unconstrained updates (``optax.sgd(eta)``
        gives projected gradient descent).
      projection: :math:`P_C`, as in :func:`project`.

    Returns:
      An ``optax.GradientTransformation`` whose updates land the params on :math:`C`.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from gradlab.optim import projected
      >>> opt = projected(optax.sgd(0.1), optax.projections.projection_simplex)
      >>> theta = jnp.full(3, 1 / 3)
      >>> updates, _ = opt.update(jnp.array([1.0, 0.0, -5.0]), opt.init(theta), theta)
      >>> theta = optax.apply_updates(theta, updates)
      >>> bool((theta >= 0).all() and jnp.isclose(theta.sum(), 1.0))
      True

    References:
      Beck, *First-Order Methods in Optimization*, SIAM (2017), chapter 10 (projected
      gradient as the proximal gradient of an indicator).
    """
    if not isinstance(inner, optax.GradientTransformation):
        raise TypeError(
            f"inner must be an optax.GradientTransformation (e.g. optax.sgd(0.1)); got "
            f"{type(inner).__name__}"
        )
    chain = optax.chain(inner, project(projection))
    lr = getattr(inner, "learning_rate", None)
    return chain if lr is None else carrying(chain, lr)
