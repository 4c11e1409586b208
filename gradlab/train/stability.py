r"""Step-size stability of gradient descent from the Hessian's largest eigenvalue.

For a quadratic :math:`J(\theta) = \tfrac12 \theta^\top H \theta - b^\top\theta + c` with
:math:`H \succeq 0`, gradient descent :math:`\theta_{t+1} = \theta_t - \alpha\nabla J(\theta_t)`
moves the error :math:`e_t = \theta_t - \theta^\star` by

.. math::  e_{t+1} = (I - \alpha H)\, e_t                                                \tag{1}

so along the eigenvector of :math:`\lambda_i` the error is multiplied by :math:`1 - \alpha
\lambda_i` at every step. It shrinks for every :math:`i` if and only if

.. math::  0 < \alpha < \frac{2}{\lambda_{\max}(H)}                                       \tag{2}

and at :math:`\alpha = 1/\lambda_{\max}` the stiffest direction is solved in one step. For a
non-quadratic loss, (2) at ``params`` is the local bound near a minimum (the edge of stability).

:math:`\lambda_{\max}` comes from ``eigvalsh`` of the dense Hessian (raveled over the parameter
pytree with ``jax.flatten_util.ravel_pytree``) or, for large :math:`d`, from power iteration on
Hessian-vector products (forward-over-reverse, never forming :math:`H`):

.. math::  v_{k+1} = \frac{H v_k}{\lVert H v_k\rVert}, \qquad
           \lambda_{\max} \approx v_k^\top H v_k                                           \tag{3}

which converges at rate :math:`|\lambda_2/\lambda_1|` per iteration to the eigenvalue of largest
magnitude (:math:`\lambda_{\max}` for :math:`H \succeq 0`).

On seed 002's data (``x = linspace(0, 10, 80)``, bias and slope,
:math:`J = \tfrac1n\lVert X\theta - y\rVert^2`, :math:`H = \tfrac2n X^\top X`),
:math:`\lambda_{\max} \approx 68.5`, so the bound is about 0.029 and the seed's ``alpha=0.05``
diverges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from gradlab import _validate as v

PyTree = Any

DENSE_MAX_DIM = 2048


def hessian_matrix(loss: Callable[..., jax.Array], params: PyTree, *data: jax.Array) -> jax.Array:
    """The dense ``(d, d)`` Hessian of ``loss`` at ``params``, raveled over the pytree."""
    flat, unravel = ravel_pytree(params)
    # one compiled call rather than jax.hessian's op-by-op dispatch (seconds when eager)
    return jax.jit(jax.hessian(lambda f, *d: loss(unravel(f), *d)))(flat, *data)


def _eigvalsh_max(H: jax.Array) -> jax.Array:
    if v.is_concrete(H):  # LAPACK through numpy: no compilation for an eager call
        return jnp.asarray(np.linalg.eigvalsh(np.asarray(H))[-1], dtype=H.dtype)
    return jnp.linalg.eigvalsh(H)[-1]


def lambda_max(
    hessian_or_loss: jax.Array | Callable[..., jax.Array],
    params: PyTree | None = None,
    *data: jax.Array,
    method: str = "auto",
    iters: int = 500,
    key: jax.Array | None = None,
) -> jax.Array:
    """The largest eigenvalue of a symmetric Hessian: dense ``eigvalsh`` or power iteration, (3).

    Args:
      hessian_or_loss: a symmetric ``(d, d)`` matrix, or ``loss(params, *data)``.
      params: where to take the Hessian of ``loss`` (required for a loss).
      *data: the loss's data arguments.
      method: ``"dense"`` (``jax.hessian`` then ``eigvalsh``), ``"power"`` (power iteration on
        Hessian-vector products, eq. (3)) or ``"auto"`` (dense up to ``d = 2048``).
      iters: power iterations.
      key: start vector's key for power iteration (default ``jax.random.key(0)``).

    Returns:
      A scalar array, :math:`\\lambda_{\\max}`.
    """
    if method not in ("auto", "dense", "power"):
        raise ValueError(f"method must be 'auto', 'dense' or 'power'; got {method!r}")
    if not callable(hessian_or_loss):
        H = jnp.asarray(hessian_or_loss)
        v.check_ndim("hessian_or_loss", H, 2)
        v.check_shape("hessian_or_loss", H, (H.shape[0], H.shape[0]))
        v.check_finite("hessian_or_loss", H)
        if params is not None or data:
            raise TypeError("a Hessian matrix takes no params or data")
        return _eigvalsh_max(H)  # (2)
    loss = hessian_or_loss
    if params is None:
        raise TypeError("lambda_max(loss, params, *data) needs params to take the Hessian at")
    flat, unravel = ravel_pytree(params)
    d = flat.shape[0]
    if method == "dense" or (method == "auto" and d <= DENSE_MAX_DIM):
        return _eigvalsh_max(hessian_matrix(loss, params, *data))
    iters = int(iters)
    if iters < 1:
        raise ValueError(f"iters must be >= 1; got {iters}")

    k = jax.random.key(0) if key is None else key

    @jax.jit
    def power(flat, k, *data):
        def hvp(t):
            return jax.jvp(jax.grad(lambda x: loss(unravel(x), *data)), (flat,), (t,))[1]

        def body(_, vk):
            hv = hvp(vk)  # (3)
            return hv / jnp.linalg.norm(hv)

        v0 = jax.random.normal(k, flat.shape, flat.dtype)
        vk = lax.fori_loop(0, iters, body, v0 / jnp.linalg.norm(v0))
        return jnp.dot(vk, hvp(vk))  # (3) Rayleigh quotient

    return power(flat, k, *data)


def max_stable_lr(
    hessian_or_loss: jax.Array | Callable[..., jax.Array],
    params: PyTree | None = None,
    *data: jax.Array,
    method: str = "auto",
    iters: int = 500,
) -> jax.Array:
    r"""Gradient descent's stability bound :math:`2 / \lambda_{\max}(H)`, eq. (2).

    Exact for quadratic losses (MSE, ridge); for other losses the local bound at ``params``.

    Args:
      hessian_or_loss: a symmetric Hessian matrix, or ``loss(params, *data)``.
      params: parameter pytree to take the Hessian at (for a loss).
      *data: the loss's data arguments.
      method: ``"auto"``, ``"dense"`` or ``"power"``; see :func:`lambda_max`.
      iters: power iterations.

    Returns:
      A scalar array: learning rates below it converge, above it diverge (quadratics).

    Examples:
      >>> import numpy as np, jax.numpy as jnp
      >>> from gradlab.derivations.mse import mse_mean
      >>> x = np.linspace(0, 10, 80); y = 2.5 + 1.7 * x
      >>> p = {"w": jnp.zeros(1), "b": jnp.zeros(())}
      >>> round(float(max_stable_lr(mse_mean, p, x[:, None], y)), 4)
      0.0292
    """
    lam = lambda_max(hessian_or_loss, params, *data, method=method, iters=iters)
    if v.is_concrete(lam) and not float(lam) > 0:
        raise ValueError(
            f"the Hessian's largest eigenvalue is {float(lam)}; the bound 2/lambda_max needs a "
            "positive curvature (is the loss convex and non-constant in params?)"
        )
    return 2.0 / lam  # (2)


__all__ = ["hessian_matrix", "lambda_max", "max_stable_lr"]
