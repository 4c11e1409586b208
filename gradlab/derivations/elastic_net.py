r"""The elastic-net objective of seed 001: half-mean MSE + L1 + half L2, a sum of named terms.

Notation of seed 001 (its markdown, which is also scikit-learn's ``ElasticNet`` scaling with
``alpha * l1_ratio = lam1`` and ``alpha * (1 - l1_ratio) = lam2``): data
:math:`X \in \mathbb{R}^{m\times d}`, targets :math:`y \in \mathbb{R}^m`, parameters
``{"w": (d,), "b": ()}``, residual :math:`r = Xw + b\mathbf{1} - y`.

.. math::  L(w, b) = \underbrace{\tfrac{1}{2m}\lVert r\rVert^2}_{\text{mse}}
           + \underbrace{\lambda_1 \textstyle\sum_j \lvert w_j\rvert}_{\text{l1}}
           + \underbrace{\tfrac{\lambda_2}{2}\lVert w\rVert^2}_{\text{l2}}              \tag{1}

Each term has its own gradient (``mse.py`` eq. (5), ``l1.py`` eq. (2), ``l2.py`` eq. (2)):

.. math::  \nabla_w L_{\text{mse}} = \tfrac{1}{m} X^\top r,\quad
           \partial_b L_{\text{mse}} = \tfrac{1}{m}\mathbf{1}^\top r                      \tag{2}
.. math::  \nabla_w L_{\text{l1}} = \lambda_1 \operatorname{sign}(w),\quad
           \partial_b L_{\text{l1}} = 0                                                    \tag{3}
.. math::  \nabla_w L_{\text{l2}} = \lambda_2 w,\quad \partial_b L_{\text{l2}} = 0       \tag{4}
.. math::  \nabla L = (2) + (3) + (4)                                                      \tag{5}

At :math:`w_j = 0` the l1 term has a kink: (3) uses :math:`\operatorname{sign}(0) = 0` (the
minimum-norm subgradient of the l1 term) and the subdifferential of :math:`L` in :math:`w_j` is

.. math::  \tfrac{1}{m}(X^\top r)_j + \lambda_2 w_j + [-\lambda_1, \lambda_1]          \tag{6}

Away from the kinks the Hessian is that of the MSE (``mse.py`` eq. (6), :math:`c = 1/m`) plus
:math:`\lambda_2 I` on the ``w, w`` block:

.. math::  \nabla^2 L = \nabla^2 L_{\text{mse}} + \lambda_2 \begin{bmatrix} I & 0 \\ 0 & 0
           \end{bmatrix}                                                                   \tag{7}

Seed 001's code computes a different objective (mean MSE + ``l1*sum|w|`` + ``l2*sum(w^2)``) and
a gradient of neither; ``papers/seeds/elastic_net.md`` works (1)-(7) out and lists the mismatch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from gradlab import _validate as v
from gradlab.derivations import l1 as _l1
from gradlab.derivations import l2 as _l2
from gradlab.derivations import mse as _mse
from gradlab.derivations._derivation import Derivation, Params


def _check(params, lam1, lam2) -> None:
    # The MSE functions check X, y, w and b themselves; the weights and the keys are ours.
    v.check_keys("params", params, ("w", "b"))
    _l1.check_penalty("lam1", lam1)
    _l1.check_penalty("lam2", lam2)


def _zero_b(params):
    return jnp.zeros_like(params["b"])


# ---- the three named terms, each with the full signature ---------------------------------------


def mse_term(
    params: Params, X: jax.Array, y: jax.Array, lam1: ArrayLike, lam2: ArrayLike
) -> jax.Array:
    """``1/(2m) ||r||^2``, the first term of eq. (1)."""
    _check(params, lam1, lam2)
    return _mse.mse_half_mean(params, X, y)


def mse_term_grad(
    params: Params, X: jax.Array, y: jax.Array, lam1: ArrayLike, lam2: ArrayLike
) -> Params:
    """Eq. (2)."""
    _check(params, lam1, lam2)
    return _mse.mse_half_mean_grad(params, X, y)


def l1_term(
    params: Params, X: jax.Array, y: jax.Array, lam1: ArrayLike, lam2: ArrayLike
) -> jax.Array:
    """``lam1 sum |w_j|``, the second term of eq. (1)."""
    _check(params, lam1, lam2)
    _mse.check_args(params, X, y)
    return _l1.l1_value(params["w"], jnp.asarray(lam1))


def l1_term_grad(
    params: Params, X: jax.Array, y: jax.Array, lam1: ArrayLike, lam2: ArrayLike
) -> Params:
    """Eq. (3), ``sign(0) = 0``."""
    _check(params, lam1, lam2)
    _mse.check_args(params, X, y)
    return {"w": _l1.l1_grad_w(params["w"], jnp.asarray(lam1)), "b": _zero_b(params)}


def l2_term(
    params: Params, X: jax.Array, y: jax.Array, lam1: ArrayLike, lam2: ArrayLike
) -> jax.Array:
    """``(lam2/2) ||w||^2``, the third term of eq. (1)."""
    _check(params, lam1, lam2)
    _mse.check_args(params, X, y)
    return _l2.l2_half_value(params["w"], jnp.asarray(lam2))


def l2_term_grad(
    params: Params, X: jax.Array, y: jax.Array, lam1: ArrayLike, lam2: ArrayLike
) -> Params:
    """Eq. (4)."""
    _check(params, lam1, lam2)
    _mse.check_args(params, X, y)
    return {"w": _l2.l2_half_grad_w(params["w"], jnp.asarray(lam2)), "b": _zero_b(params)}


# ---- the objective ------------------------------------------------------------------------------


def elastic_net(
    params: Params, X: jax.Array, y: jax.Array, lam1: ArrayLike, lam2: ArrayLike
) -> jax.Array:
    """The elastic-net objective, eq. (1).

    Args:
      params: ``{"w": (d,), "b": ()}``.
      X: data, ``(m, d)``.
      y: targets, ``(m,)`` (not ``(m, 1)``).
      lam1: the L1 weight, a floating scalar ``>= 0``.
      lam2: the L2 weight, a floating scalar ``>= 0`` (the penalty is ``lam2/2 ||w||^2``).

    Returns:
      The objective, a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> p = {"w": jnp.array([1.0, -1.0]), "b": jnp.array(0.0)}
      >>> X, y = jnp.eye(2), jnp.array([1.0, -1.0])
      >>> float(elastic_net(p, X, y, jnp.array(0.5), jnp.array(1.0)))
      2.0
    """
    _check(params, lam1, lam2)
    w = params["w"]
    return (  # (1)
        _mse.mse_half_mean(params, X, y)
        + _l1.l1_value(w, jnp.asarray(lam1))
        + _l2.l2_half_value(w, jnp.asarray(lam2))
    )


def elastic_net_grad(
    params: Params, X: jax.Array, y: jax.Array, lam1: ArrayLike, lam2: ArrayLike
) -> Params:
    """Eq. (5): the sum of the term gradients (2)-(4), ``sign(0) = 0`` at the kinks."""
    _check(params, lam1, lam2)
    g = _mse.mse_half_mean_grad(params, X, y)  # (2)
    w = params["w"]
    gw = (
        g["w"] + _l1.l1_grad_w(w, jnp.asarray(lam1)) + _l2.l2_half_grad_w(w, jnp.asarray(lam2))
    )  # (3), (4)
    return {"w": gw, "b": g["b"]}  # (5)


def elastic_net_subdifferential(
    params: Params, X: jax.Array, y: jax.Array, lam1: ArrayLike, lam2: ArrayLike
) -> tuple[Params, Params]:
    """The subdifferential (6) as two pytrees ``(low, high)``, a box (the kinks are separable)."""
    _check(params, lam1, lam2)
    g = _mse.mse_half_mean_grad(params, X, y)
    w = params["w"]
    smooth = g["w"] + _l2.l2_half_grad_w(w, jnp.asarray(lam2))
    low, high = _l1.l1_interval_w(w, jnp.asarray(lam1))  # (6)
    return {"w": smooth + low, "b": g["b"]}, {"w": smooth + high, "b": g["b"]}


def elastic_net_hessian(
    params: Params, X: jax.Array, y: jax.Array, lam1: ArrayLike, lam2: ArrayLike
) -> dict[str, Params]:
    """Eq. (7), valid away from the kinks ``w_j = 0``."""
    _check(params, lam1, lam2)
    h = _mse.mse_half_mean_hessian(params, X, y)
    d = params["w"].shape[0]
    ww = h["w"]["w"] + lam2 * jnp.eye(d, dtype=params["w"].dtype)  # (7)
    return {"w": {"w": ww, "b": h["w"]["b"]}, "b": h["b"]}


def elastic_net_hvp(
    params: Params, X: jax.Array, y: jax.Array, lam1: ArrayLike, lam2: ArrayLike, tangent: Params
) -> Params:
    """Eq. (7) applied to ``tangent``, valid away from the kinks."""
    _check(params, lam1, lam2)
    hv = _mse.mse_half_mean_hvp(params, X, y, tangent)
    return {"w": hv["w"] + lam2 * tangent["w"], "b": hv["b"]}  # (7)


def make_args(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike) -> tuple:
    """``(params, X, y, lam1, lam2)`` with ``shape = (m, d)``: the MSE example of ``mse.py``,
    ``lam1`` and ``lam2`` uniform in ``[0.05, 1]``."""
    k, k1, k2 = jax.random.split(key, 3)
    params, X, y = _mse.make_args(k, shape, dtype)
    lam1 = jax.random.uniform(k1, (), dtype, 0.05, 1.0)
    lam2 = jax.random.uniform(k2, (), dtype, 0.05, 1.0)
    return params, X, y, lam1, lam2


def kink_args(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike) -> tuple:
    """Like :func:`make_args` but every other entry of ``w`` is exactly 0 (a kink of (1))."""
    params, X, y, lam1, lam2 = make_args(key, shape, dtype)
    w = params["w"]
    w = jnp.where(jnp.arange(w.shape[0]) % 2 == 0, jnp.zeros_like(w), w)
    return {"w": w, "b": params["b"]}, X, y, lam1, lam2


SHAPES = _mse.SHAPES

ELASTIC_NET = Derivation(
    name="elastic_net",
    loss=elastic_net,
    grad=elastic_net_grad,
    hessian=elastic_net_hessian,
    hvp=elastic_net_hvp,
    make_args=make_args,
    shapes=SHAPES,
    terms={"mse": mse_term, "l1": l1_term, "l2": l2_term},
    term_grads={"mse": mse_term_grad, "l1": l1_term_grad, "l2": l2_term_grad},
    kinks=True,
    seed="001",
    note="papers/seeds/elastic_net.md",
    summary="1/(2m)||r||^2 + lam1*|w|_1 + (lam2/2)||w||^2, terms mse/l1/l2",
)
