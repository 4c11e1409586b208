r"""Mean squared error of a linear model with bias, in the two conventions the seeds use.

Notation (seed 002 writes :math:`\theta` with a bias column; seed 001 writes ``w`` and ``b``).
Data :math:`X \in \mathbb{R}^{n\times d}`, targets :math:`y \in \mathbb{R}^n`, parameters
``{"w": (d,), "b": ()}``. The residual is

.. math::  r = Xw + b\mathbf{1} - y                                              \tag{1}

Mean convention (seed 002, section 3), and its gradient (seed 002, section 4):

.. math::  J(w, b) = \tfrac{1}{n}\lVert r\rVert^2                                \tag{2}
.. math::  \nabla_w J = \tfrac{2}{n} X^\top r, \qquad
           \partial_b J = \tfrac{2}{n}\mathbf{1}^\top r                                  \tag{3}

Half-mean convention (seed 001, first equation; ``m`` is the number of rows):

.. math::  L(w, b) = \tfrac{1}{2m}\lVert r\rVert^2                               \tag{4}
.. math::  \nabla_w L = \tfrac{1}{m} X^\top r, \qquad
           \partial_b L = \tfrac{1}{m}\mathbf{1}^\top r                                  \tag{5}

Both are :math:`c/2 \cdot \lVert r\rVert^2` with :math:`c = 2/n` or :math:`1/m`; their Hessian is
constant,

.. math::  H = c \begin{bmatrix} X^\top X & X^\top\mathbf{1} \\
                                 \mathbf{1}^\top X & n \end{bmatrix}, \qquad
           Hv = c \begin{bmatrix} X^\top u \\ \mathbf{1}^\top u \end{bmatrix},\;
           u = Xv_w + v_b\mathbf{1}                                                      \tag{6}

:math:`X^\top r` is computed as ``r @ X``: on XLA:CPU ``X.T @ r`` copies ``X`` at every call.
The step-by-step derivation is ``papers/seeds/mse.md``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from gradlab import _validate as v
from gradlab.derivations._derivation import Derivation, Params


def check_args(params: Params, X: jax.Array, y: jax.Array) -> None:
    """The contract of eq. (1): keys ``w``, ``b``; ``X (n, d)``, ``y (n,)``, ``w (d,)``,
    ``b ()``; finite data. Shared with the modules built on the MSE (elastic net, MIRAGE)."""
    v.check_keys("params", params, ("w", "b"))
    v.check_ndim("X", X, 2)
    n, d = X.shape
    v.check_shape("y", y, (n,))
    v.check_shape('params["w"]', params["w"], (d,))
    v.check_shape('params["b"]', params["b"], ())
    v.check_finite("X", X)
    v.check_finite("y", y)


def residual(params: Params, X: jax.Array, y: jax.Array) -> jax.Array:
    """``r = X w + b - y``, eq. (1). Shapes are checked: ``y`` must be ``(n,)``, not ``(n, 1)``."""
    check_args(params, X, y)
    return X @ params["w"] + params["b"] - y  # (1)


def _scale(params, X, numerator: float) -> float:
    """``numerator / n``, ``c`` of eq. (6), once the structure allows it (the values are checked
    where they are used): ``n = 0`` is an error, not a division by zero."""
    v.check_keys("params", params, ("w", "b"))
    v.check_ndim("X", X, 2)
    if X.shape[0] < 1:
        raise ValueError(
            f"X must hold at least one row (the mean is over rows); got shape {v.shape_of(X)}"
        )
    return numerator / X.shape[0]


def _half_sq(params, X, y, c):
    r = residual(params, X, y)
    return 0.5 * c * jnp.dot(r, r)


def _grad(params, X, y, c):
    r = residual(params, X, y)
    return {"w": c * (r @ X), "b": c * jnp.sum(r)}  # (3) / (5), r @ X == X^T r


def _hessian(params, X, y, c):
    check_args(params, X, y)
    n = X.shape[0]
    col = c * jnp.sum(X, axis=0)  # c X^T 1
    return {  # (6)
        "w": {"w": c * (X.T @ X), "b": col},
        "b": {"w": col, "b": c * jnp.asarray(n, X.dtype)},
    }


def _hvp(params, X, y, tangent, c):
    check_args(params, X, y)
    u = X @ tangent["w"] + tangent["b"]  # (6)
    return {"w": c * (u @ X), "b": c * jnp.sum(u)}


# ---- mean convention, seed 002: J = (1/n) ||r||^2 -------------------------------------------


def mse_mean(params: Params, X: jax.Array, y: jax.Array) -> jax.Array:
    """``J = (1/n) ||X w + b - y||^2``, eq. (2)."""
    return _half_sq(params, X, y, _scale(params, X, 2.0))


def mse_mean_grad(params: Params, X: jax.Array, y: jax.Array) -> Params:
    """``dJ/dw = (2/n) X^T r``, ``dJ/db = (2/n) sum r``, eq. (3)."""
    return _grad(params, X, y, _scale(params, X, 2.0))


def mse_mean_hessian(params: Params, X: jax.Array, y: jax.Array) -> dict[str, Params]:
    """Eq. (6) with ``c = 2/n``."""
    return _hessian(params, X, y, _scale(params, X, 2.0))


def mse_mean_hvp(params: Params, X: jax.Array, y: jax.Array, tangent: Params) -> Params:
    """Eq. (6) applied to ``tangent`` with ``c = 2/n``."""
    return _hvp(params, X, y, tangent, _scale(params, X, 2.0))


# ---- half-mean convention, seed 001: L = 1/(2m) ||r||^2 -------------------------------------


def mse_half_mean(params: Params, X: jax.Array, y: jax.Array) -> jax.Array:
    """``L = 1/(2m) ||X w + b - y||^2``, eq. (4)."""
    return _half_sq(params, X, y, _scale(params, X, 1.0))


def mse_half_mean_grad(params: Params, X: jax.Array, y: jax.Array) -> Params:
    """``dL/dw = (1/m) X^T r``, ``dL/db = (1/m) sum r``, eq. (5)."""
    return _grad(params, X, y, _scale(params, X, 1.0))


def mse_half_mean_hessian(params: Params, X: jax.Array, y: jax.Array) -> dict[str, Params]:
    """Eq. (6) with ``c = 1/m``."""
    return _hessian(params, X, y, _scale(params, X, 1.0))


def mse_half_mean_hvp(params: Params, X: jax.Array, y: jax.Array, tangent: Params) -> Params:
    """Eq. (6) applied to ``tangent`` with ``c = 1/m``."""
    return _hvp(params, X, y, tangent, _scale(params, X, 1.0))


def make_args(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike) -> tuple:
    """``(params, X, y)`` with ``shape = (n, d)``, standard normal entries."""
    n, d = shape
    kw, kb, kx, ky = jax.random.split(key, 4)
    params = {
        "w": jax.random.normal(kw, (d,), dtype),
        "b": jax.random.normal(kb, (), dtype),
    }
    X = jax.random.normal(kx, (n, d), dtype)
    y = jax.random.normal(ky, (n,), dtype)
    return params, X, y


SHAPES = ((16, 3), (80, 7))

MEAN = Derivation(
    name="mse_mean",
    loss=mse_mean,
    grad=mse_mean_grad,
    hessian=mse_mean_hessian,
    hvp=mse_mean_hvp,
    make_args=make_args,
    shapes=SHAPES,
    seed="002",
    note="papers/seeds/mse.md",
    summary="(1/n)||Xw+b-y||^2, linear model with bias",
)

HALF_MEAN = Derivation(
    name="mse_half_mean",
    loss=mse_half_mean,
    grad=mse_half_mean_grad,
    hessian=mse_half_mean_hessian,
    hvp=mse_half_mean_hvp,
    make_args=make_args,
    shapes=SHAPES,
    seed="001",
    note="papers/seeds/mse.md",
    summary="1/(2m)||Xw+b-y||^2, linear model with bias",
)
