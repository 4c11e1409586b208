r"""The optimality conditions of the inner problem, on a flat parameter vector.

With :math:`g(\theta, \lambda) = \nabla_\theta L(\theta, \lambda)` and L1 strengths
:math:`\rho(\lambda)`, the inner optimum of ``_problem`` eq. (1) is the fixed point of the
proximal-gradient map (unit step) :math:`T(\theta) = \mathrm{soft}(\theta - g, \rho)`:

.. math::  r(\theta, \lambda) = \theta - \mathrm{soft}\big(\theta - g(\theta, \lambda),\,
           \rho(\lambda)\big), \qquad \lVert r \rVert = 0 \iff \theta = \theta^\star      \tag{1}

(:math:`r = g` for a smooth problem). On the support :math:`S = \{j : \theta_j \ne 0 \text{ or }
\rho_j = 0\}` the soft-threshold is a shift, so there :math:`T` is smooth and the fixed point
reads

.. math::  F_S(\theta, \lambda) = m \odot \big(g(\theta, \lambda) + \rho(\lambda) \odot
           \mathrm{sign}\,\theta\big) = 0, \qquad m = 1_S                              \tag{2}

while off :math:`S` the Jacobian of soft is zero, so :math:`\partial\theta_j/\partial\lambda = 0`.
Differentiating (2) therefore needs the system

.. math::  A = m\,H\,m + (1 - m), \qquad H = \nabla^2_\theta L                          \tag{3}

(:math:`m` as a diagonal), symmetric: :math:`H_{SS}` on the support, the identity off it.
A coordinate is *tight* (a support change is one perturbation away: the hypergradient is not
defined there) when it is off :math:`S` with :math:`|g_j| \ge \rho_j (1 - \tau)`, or on
:math:`S`, penalized, with :math:`|\theta_j| \le \tau \max_k |\theta_k|`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gradlab.hypergrad._problem import InnerProblem

PyTree = Any


class Flat(NamedTuple):
    """The inner problem at one point on a flat vector: eq. (1)-(3) as closures."""

    theta: jax.Array
    unravel: Any
    grad: Any  # (theta, hp) -> g, flat
    rho: Any  # hp -> rho, flat (zeros for a smooth problem)


def flatten(problem: InnerProblem, params: PyTree) -> Flat:
    """``params`` as a flat vector with the gradient and L1 strengths as flat closures."""
    theta, unravel = ravel_pytree(params)

    def grad(t, hp):
        g = jax.grad(problem.loss)(unravel(t), hp, *problem.data)
        return ravel_pytree(g)[0]

    def rho(hp):
        if problem.l1 is None:
            return jnp.zeros_like(theta)
        strengths = problem.l1(hp)
        full = jax.tree.map(
            lambda r, p: jnp.broadcast_to(jnp.asarray(r, p.dtype), p.shape), strengths, params
        )
        return ravel_pytree(full)[0]

    return Flat(theta, unravel, grad, rho)


def soft(z: jax.Array, threshold: jax.Array) -> jax.Array:
    """Soft-thresholding, the prox of :math:`\\rho |\\cdot|`."""
    return jnp.sign(z) * jnp.maximum(jnp.abs(z) - threshold, 0.0)


def fixed_point_residual(flat: Flat, hp: PyTree) -> jax.Array:
    """:math:`\\lVert r \\rVert_2` of eq. (1)."""
    t = flat.theta
    return jnp.linalg.norm(t - soft(t - flat.grad(t, hp), flat.rho(hp)))


def support(flat: Flat, hp: PyTree) -> jax.Array:
    """The mask :math:`m` of eq. (2), as floats."""
    on = (flat.theta != 0) | (flat.rho(hp) == 0)
    return on.astype(flat.theta.dtype)


def tight(flat: Flat, hp: PyTree, mask: jax.Array, tau: float) -> jax.Array:
    """Number of tight coordinates (module docstring): a support change is near."""
    rho = flat.rho(hp)
    g = flat.grad(flat.theta, hp)
    penalized = rho > 0
    entering = (mask == 0) & penalized & (jnp.abs(g) >= rho * (1 - tau))
    scale = jnp.max(jnp.abs(flat.theta), initial=0.0)
    leaving = (mask == 1) & penalized & (jnp.abs(flat.theta) <= tau * scale)
    return jnp.sum(entering) + jnp.sum(leaving)


def restricted_map(flat: Flat, mask: jax.Array):
    """:math:`F_S(\\theta, \\lambda)` of eq. (2) with the support frozen at ``mask``."""

    def F(t, hp):
        return mask * (flat.grad(t, hp) + flat.rho(hp) * jnp.sign(flat.theta))

    return F


def system(flat: Flat, hp: PyTree, mask: jax.Array, at: jax.Array | None = None):
    """The operator :math:`v \\mapsto A v` of eq. (3) (Hessian-vector products, no matrix)."""
    t0 = flat.theta if at is None else at

    def hvp(v):
        return jax.jvp(lambda t: flat.grad(t, hp), (t0,), (v,))[1]

    def matvec(v):
        return mask * hvp(mask * v) + (1 - mask) * v

    return matvec
