r"""Binary logistic regression: mean cross-entropy with logits, stable, with Hessian and HVP.

The first model beyond the seeds, in the notation of seed 001 / 002's linear model: data
:math:`X \in \mathbb{R}^{n\times d}`, labels :math:`y \in \{0, 1\}^n` (stored as floats),
parameters ``{"w": (d,), "b": ()}``, logits and probabilities

.. math::  z = Xw + b\mathbf{1}, \qquad p = \sigma(z) = 1/(1 + e^{-z})                   \tag{1}

The mean binary cross-entropy :math:`-\frac{1}{n}\sum_i [y_i \log p_i + (1-y_i)\log(1-p_i)]`,
rewritten with :math:`\log p = z - \operatorname{softplus}(z)` and
:math:`\log(1-p) = -\operatorname{softplus}(z)` so that no :math:`\log 0` or overflowing
:math:`e^{z}` is ever formed (``softplus(z) = log(1 + e^z)`` is computed as
``logaddexp(z, 0)``):

.. math::  J(w, b) = \tfrac{1}{n}\sum_i \bigl[\operatorname{softplus}(z_i) - y_i z_i\bigr] \tag{2}

Since :math:`\operatorname{softplus}' = \sigma`, the chain rule through (1) gives

.. math::  \nabla_w J = \tfrac{1}{n} X^\top (p - y), \qquad
           \partial_b J = \tfrac{1}{n}\mathbf{1}^\top (p - y)                              \tag{3}

and since :math:`\sigma' = \sigma(1-\sigma) = \sigma(z)\sigma(-z)` (the second form never
subtracts two numbers near 1), with :math:`s = p \odot (1 - p)`:

.. math::  H = \tfrac{1}{n} \begin{bmatrix} X^\top \operatorname{diag}(s) X & X^\top s \\
           s^\top X & \mathbf{1}^\top s \end{bmatrix}, \qquad
           Hv = \tfrac{1}{n} \begin{bmatrix} X^\top (s \odot u) \\ \mathbf{1}^\top (s\odot u)
           \end{bmatrix},\; u = X v_w + v_b \mathbf{1}                                     \tag{4}

:math:`X^\top a` is computed as ``a @ X`` (no copy of ``X`` on XLA:CPU). The step-by-step
derivation is ``papers/seeds/logistic_regression.md``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from gradlab import _validate as v
from gradlab.derivations._derivation import Derivation, Params


def _check(params, X, y) -> None:
    v.check_keys("params", params, ("w", "b"))
    v.check_ndim("X", X, 2)
    n, d = X.shape
    v.check_shape("y", y, (n,))
    v.check_shape('params["w"]', params["w"], (d,))
    v.check_shape('params["b"]', params["b"], ())
    v.check_floating("X", X)
    v.check_floating("y", y)
    v.check_finite("X", X)
    v.check_finite("y", y)
    v.check_binary("y", y)
    v.check_finite('params["w"]', params["w"])
    v.check_finite('params["b"]', params["b"])


def logits(params: Params, X: jax.Array, y: jax.Array) -> jax.Array:
    """``z = X w + b``, eq. (1); ``y`` is taken only so its shape can be checked against ``z``."""
    _check(params, X, y)
    return X @ params["w"] + params["b"]  # (1)


def logistic_regression(params: Params, X: jax.Array, y: jax.Array) -> jax.Array:
    """Mean binary cross-entropy with logits, eq. (2).

    Args:
      params: ``{"w": (d,), "b": ()}``.
      X: data, ``(n, d)``.
      y: labels in ``{0, 1}`` as floats, ``(n,)``.

    Returns:
      The mean loss, a scalar (finite for any finite logits).

    Examples:
      >>> import jax.numpy as jnp
      >>> p = {"w": jnp.zeros(2), "b": jnp.array(0.0)}
      >>> round(float(logistic_regression(p, jnp.ones((3, 2)), jnp.array([0.0, 1.0, 1.0]))), 6)
      0.693147
    """
    z = logits(params, X, y)
    n = X.shape[0]
    return jnp.sum(jnp.logaddexp(z, 0) - y * z) / n  # (2)


def logistic_regression_grad(params: Params, X: jax.Array, y: jax.Array) -> Params:
    """``{"w": (1/n) X^T (p - y), "b": (1/n) sum (p - y)}``, eq. (3)."""
    z = logits(params, X, y)
    n = X.shape[0]
    e = (jax.nn.sigmoid(z) - y) / n  # (3)
    return {"w": e @ X, "b": jnp.sum(e)}


def _curvature(z):
    return jax.nn.sigmoid(z) * jax.nn.sigmoid(-z)  # s = p(1 - p), eq. (4)


def logistic_regression_hessian(params: Params, X: jax.Array, y: jax.Array) -> dict[str, Params]:
    """The block Hessian, eq. (4)."""
    z = logits(params, X, y)
    n = X.shape[0]
    s = _curvature(z) / n
    col = s @ X  # (1/n) X^T s
    return {  # (4)
        "w": {"w": X.T @ (X * s[:, None]), "b": col},
        "b": {"w": col, "b": jnp.sum(s)},
    }


def logistic_regression_hvp(params: Params, X: jax.Array, y: jax.Array, tangent: Params) -> Params:
    """Eq. (4) applied to ``tangent``."""
    z = logits(params, X, y)
    n = X.shape[0]
    u = X @ tangent["w"] + tangent["b"]
    t = _curvature(z) * u / n  # (4)
    return {"w": t @ X, "b": jnp.sum(t)}


def make_args(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike) -> tuple:
    """``(params, X, y)`` with ``shape = (n, d)``: normal ``X`` and parameters, labels drawn from
    the model itself (``y ~ Bernoulli(p)``), so both classes occur."""
    n, d = shape
    kw, kb, kx, ky = jax.random.split(key, 4)
    params = {
        "w": jax.random.normal(kw, (d,), dtype),
        "b": jax.random.normal(kb, (), dtype),
    }
    X = jax.random.normal(kx, (n, d), dtype)
    p = jax.nn.sigmoid(X @ params["w"] + params["b"])
    y = jax.random.bernoulli(ky, p).astype(dtype)
    return params, X, y


LOGISTIC_REGRESSION = Derivation(
    name="logistic_regression",
    loss=logistic_regression,
    grad=logistic_regression_grad,
    hessian=logistic_regression_hessian,
    hvp=logistic_regression_hvp,
    make_args=make_args,
    shapes=((16, 3), (80, 7)),
    note="papers/seeds/logistic_regression.md",
    summary="mean BCE with logits, softplus form, Hessian X^T diag(p(1-p)) X / n",
)
