r"""The L2 penalty in its two conventions, named apart (seed 001 mixes them).

Notation of seed 001: weights :math:`w \in \mathbb{R}^d`, parameters ``{"w": (d,)}``, penalty
weight :math:`\lambda_2 \ge 0` (called ``lam`` here, a scalar array so it can be ``vmap``-ed).

Half convention (seed 001 markdown; scikit-learn's ``ElasticNet`` and ``Ridge`` scaling up to
:math:`1/2`), named ``l2_half``:

.. math::  P_{1/2}(w) = \tfrac{\lambda_2}{2} \lVert w\rVert^2                          \tag{1}
.. math::  \nabla_w P_{1/2} = \lambda_2 w                                               \tag{2}
.. math::  \nabla^2_w P_{1/2} = \lambda_2 I, \qquad (\nabla^2_w P_{1/2}) v = \lambda_2 v \tag{3}

Full convention (seed 001 code, ``Loss.__call__``: ``l2_lambda * sum(w**2)``), named ``l2_full``:

.. math::  P_1(w) = \lambda_2 \lVert w\rVert^2                                          \tag{4}
.. math::  \nabla_w P_1 = 2\lambda_2 w                                                  \tag{5}
.. math::  \nabla^2_w P_1 = 2\lambda_2 I, \qquad (\nabla^2_w P_1) v = 2\lambda_2 v     \tag{6}

Seed 001's ``LinearModel.backward`` adds :math:`\lambda_2 w`, the gradient (2) of the half form,
to the loss of its code, which uses the full form (4): its step is half the true one.
The step-by-step derivation is ``papers/seeds/l2.md``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from gradlab import _validate as v
from gradlab.derivations._derivation import Derivation, Params
from gradlab.derivations.l1 import check_penalty


def _check(params, lam) -> None:
    v.check_keys("params", params, ("w",))
    v.check_ndim('params["w"]', params["w"], 1)
    v.check_floating('params["w"]', params["w"])
    v.check_finite('params["w"]', params["w"])
    check_penalty("lam", lam)


def _half_sq(w: jax.Array, c: jax.Array) -> jax.Array:
    return 0.5 * c * jnp.dot(w, w)


# ---- array-level pieces, reused by the elastic net ----------------------------------------------


def l2_half_value(w: jax.Array, lam: jax.Array) -> jax.Array:
    """``(lam/2) ||w||^2``, eq. (1), on the weight array itself."""
    return _half_sq(w, lam)  # (1)


def l2_half_grad_w(w: jax.Array, lam: jax.Array) -> jax.Array:
    """``lam * w``, eq. (2)."""
    return lam * w  # (2)


def _hessian(params, c):
    d = params["w"].shape[0]
    return {"w": {"w": c * jnp.eye(d, dtype=params["w"].dtype)}}  # (3) / (6)


# ---- half convention: (lam/2) ||w||^2 -----------------------------------------------------------


def l2_half(params: Params, lam: ArrayLike) -> jax.Array:
    """``P = (lam/2) ||w||^2``, eq. (1).

    Args:
      params: ``{"w": (d,)}``.
      lam: the penalty weight, a floating scalar ``>= 0``.

    Returns:
      The penalty, a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(l2_half({"w": jnp.array([1.0, 2.0])}, jnp.array(0.5)))
      1.25
    """
    _check(params, lam)
    return l2_half_value(params["w"], jnp.asarray(lam))


def l2_half_grad(params: Params, lam: ArrayLike) -> Params:
    """``{"w": lam * w}``, eq. (2)."""
    _check(params, lam)
    return {"w": l2_half_grad_w(params["w"], jnp.asarray(lam))}


def l2_half_hessian(params: Params, lam: ArrayLike) -> dict[str, Params]:
    """``lam * I``, eq. (3)."""
    _check(params, lam)
    return _hessian(params, lam)


def l2_half_hvp(params: Params, lam: ArrayLike, tangent: Params) -> Params:
    """``lam * v``, eq. (3)."""
    _check(params, lam)
    return {"w": jnp.asarray(lam) * tangent["w"]}


# ---- full convention: lam ||w||^2 ---------------------------------------------------------------


def l2_full(params: Params, lam: ArrayLike) -> jax.Array:
    """``P = lam ||w||^2``, eq. (4) (seed 001's code).

    Examples:
      >>> import jax.numpy as jnp
      >>> float(l2_full({"w": jnp.array([1.0, 2.0])}, jnp.array(0.5)))
      2.5
    """
    _check(params, lam)
    return _half_sq(params["w"], 2 * jnp.asarray(lam))  # (4)


def l2_full_grad(params: Params, lam: ArrayLike) -> Params:
    """``{"w": 2 lam w}``, eq. (5)."""
    _check(params, lam)
    return {"w": (2 * jnp.asarray(lam)) * params["w"]}  # (5)


def l2_full_hessian(params: Params, lam: ArrayLike) -> dict[str, Params]:
    """``2 lam I``, eq. (6)."""
    _check(params, lam)
    return _hessian(params, 2 * lam)


def l2_full_hvp(params: Params, lam: ArrayLike, tangent: Params) -> Params:
    """``2 lam v``, eq. (6)."""
    _check(params, lam)
    return {"w": (2 * jnp.asarray(lam)) * tangent["w"]}


def make_args(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike) -> tuple:
    """``(params, lam)`` with ``shape = (d,)``: standard normal ``w``, ``lam`` uniform in
    ``[0.1, 2]``."""
    (d,) = shape
    kw, kl = jax.random.split(key)
    params = {"w": jax.random.normal(kw, (d,), dtype)}
    lam = jax.random.uniform(kl, (), dtype, 0.1, 2.0)
    return params, lam


SHAPES = ((5,), (40,))

HALF = Derivation(
    name="l2_half",
    loss=l2_half,
    grad=l2_half_grad,
    hessian=l2_half_hessian,
    hvp=l2_half_hvp,
    make_args=make_args,
    shapes=SHAPES,
    seed="001",
    note="papers/seeds/l2.md",
    summary="(lam/2)||w||^2, gradient lam*w",
)

FULL = Derivation(
    name="l2_full",
    loss=l2_full,
    grad=l2_full_grad,
    hessian=l2_full_hessian,
    hvp=l2_full_hvp,
    make_args=make_args,
    shapes=SHAPES,
    seed="001",
    note="papers/seeds/l2.md",
    summary="lam||w||^2, gradient 2*lam*w",
)
