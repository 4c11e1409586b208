r"""The L1 penalty (seed 001, the Lasso term), its minimum-norm subgradient and subdifferential.

Notation of seed 001: weights :math:`w \in \mathbb{R}^d`, parameters ``{"w": (d,)}``, penalty
weight :math:`\lambda_1 \ge 0` (called ``lam`` here, a scalar array so it can be ``vmap``-ed).

.. math::  P_1(w) = \lambda_1 \sum_j \lvert w_j\rvert                                    \tag{1}

Away from :math:`w_j = 0` the penalty is differentiable with

.. math::  \partial P_1 / \partial w_j = \lambda_1 \operatorname{sign}(w_j), \quad w_j \ne 0 \tag{2}

At :math:`w_j = 0` it has a kink; its subdifferential is the interval

.. math::  \partial_j P_1(w) = \begin{cases} \{\lambda_1 \operatorname{sign}(w_j)\} & w_j \ne 0 \\
           [-\lambda_1, \lambda_1] & w_j = 0 \end{cases}                                \tag{3}

Convention at 0: the hand gradient returns :math:`\lambda_1 \operatorname{sign}(0) = 0`, the
element of (3) with the smallest norm (the minimum-norm subgradient), which is what
``jnp.sign`` gives. ``jax.grad`` of ``jnp.abs`` returns :math:`+\lambda_1` at 0, another member of
(3): at a kink the two are compared by membership in (3), not by equality. The Hessian is zero
away from the kinks and does not exist at them, so none is given.

The step-by-step derivation is ``papers/seeds/l1.md``. Seed 001 writes (2) in its markdown but its
``LinearModel.backward`` adds ``sign(w)`` without the factor :math:`\lambda_1` (and reads
``self.l1_lambda``, which only ``Loss`` defines).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from gradlab import _validate as v
from gradlab.derivations._derivation import Derivation, Params


def check_penalty(name: str, lam: ArrayLike) -> None:
    """A penalty weight: a finite floating scalar ``>= 0`` (a negative one rewards big weights)."""
    v.check_scalar(name, lam)
    v.check_finite(name, lam)
    v.check_nonnegative(name, lam)


def _check(params, lam) -> None:
    v.check_keys("params", params, ("w",))
    v.check_ndim('params["w"]', params["w"], 1)
    v.check_floating('params["w"]', params["w"])
    v.check_finite('params["w"]', params["w"])
    check_penalty("lam", lam)


# ---- array-level pieces, reused by the elastic net ----------------------------------------------


def l1_value(w: jax.Array, lam: jax.Array) -> jax.Array:
    """``lam * sum |w|``, eq. (1), on the weight array itself."""
    return lam * jnp.sum(jnp.abs(w))  # (1)


def l1_grad_w(w: jax.Array, lam: jax.Array) -> jax.Array:
    """``lam * sign(w)``, eq. (2), with ``sign(0) = 0`` (the minimum-norm subgradient)."""
    return lam * jnp.sign(w)  # (2), (3) at w_j = 0


def l1_interval_w(w: jax.Array, lam: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The ends ``(low, high)`` of the subdifferential (3), elementwise."""
    s = lam * jnp.sign(w)
    at_kink = w == 0
    return jnp.where(at_kink, -lam, s), jnp.where(at_kink, lam, s)  # (3)


# ---- the derivation on a parameter dict -------------------------------------------------------


def l1(params: Params, lam: ArrayLike) -> jax.Array:
    """``P_1 = lam * sum_j |w_j|``, eq. (1).

    Args:
      params: ``{"w": (d,)}``.
      lam: the penalty weight, a floating scalar ``>= 0``.

    Returns:
      The penalty, a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(l1({"w": jnp.array([1.0, -2.0, 0.0])}, jnp.array(0.5)))
      1.5
    """
    _check(params, lam)
    return l1_value(params["w"], jnp.asarray(lam))


def l1_grad(params: Params, lam: ArrayLike) -> Params:
    """The minimum-norm subgradient ``{"w": lam * sign(w)}``, eqs. (2)-(3), ``sign(0) = 0``."""
    _check(params, lam)
    return {"w": l1_grad_w(params["w"], jnp.asarray(lam))}


def l1_subdifferential(params: Params, lam: ArrayLike) -> tuple[Params, Params]:
    """The subdifferential (3) as two pytrees ``(low, high)``: ``g`` is a subgradient iff
    ``low <= g <= high`` leaf by leaf (the L1 penalty is separable, so the set is a box)."""
    _check(params, lam)
    low, high = l1_interval_w(params["w"], jnp.asarray(lam))
    return {"w": low}, {"w": high}


def make_args(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike) -> tuple:
    """``(params, lam)`` with ``shape = (d,)``: standard normal ``w`` (no entry at 0 almost surely),
    ``lam`` uniform in ``[0.1, 2]``."""
    (d,) = shape
    kw, kl = jax.random.split(key)
    params = {"w": jax.random.normal(kw, (d,), dtype)}
    lam = jax.random.uniform(kl, (), dtype, 0.1, 2.0)
    return params, lam


def kink_args(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike) -> tuple:
    """Like :func:`make_args` but every other entry of ``w`` is exactly 0 (on the kink of (1))."""
    params, lam = make_args(key, shape, dtype)
    w = params["w"]
    return {"w": jnp.where(jnp.arange(w.shape[0]) % 2 == 0, jnp.zeros_like(w), w)}, lam


SHAPES = ((5,), (40,))

L1 = Derivation(
    name="l1",
    loss=l1,
    grad=l1_grad,
    make_args=make_args,
    shapes=SHAPES,
    kinks=True,
    seed="001",
    note="papers/seeds/l1.md",
    summary="lam*sum|w|, minimum-norm subgradient (sign(0)=0)",
)
