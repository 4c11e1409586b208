r"""Softmax negative log-likelihood of a histogram (seed 004, part a), computed in log space.

Notation of seed 004: logits :math:`\theta \in \mathbb{R}^d`, parameters ``{"theta": (d,)}``,
data :math:`x_1, \dots, x_N` integers in the support :math:`\{0, \dots, d-1\}` (``x``, shape
``(N,)``), :math:`e_k` the k-th basis vector, :math:`c_k = \#\{i : x_i = k\}` the histogram.

Model and loss (seed 004, "Probabilities" and "Negative Log Likelihood"):

.. math::  p_\theta(k) = \exp(\theta_k) / \textstyle\sum_j \exp(\theta_j)                \tag{1}
.. math::  L(\theta) = -\tfrac{1}{N} \textstyle\sum_i \log p_\theta(x_i)                  \tag{2}

Gradient (seed 004, "Deriving the Gradient", step 5), and the same as a histogram:

.. math::  \nabla L = -\tfrac{1}{N} \textstyle\sum_i (e_{x_i} - p_\theta)
                    = p_\theta - c / N                                                     \tag{3}

Stable evaluation. The seed computes (1) as ``np.exp(theta) / np.sum(np.exp(theta))``, which
overflows to ``inf / inf = nan`` once a logit passes ~709 (float64) or ~88 (float32), and
underflows ``log p`` to ``-inf`` for a very unlikely class. In log space, with
:math:`m = \max_j \theta_j`,

.. math::  \log p_\theta(k) = \theta_k - \operatorname{LSE}(\theta), \qquad
           \operatorname{LSE}(\theta) = m + \log \textstyle\sum_j \exp(\theta_j - m)         \tag{4}
.. math::  L(\theta) = \operatorname{LSE}(\theta) - \tfrac{1}{N} \sum_i \theta_{x_i}  \tag{5}

every exponent is :math:`\le 0` and the sum is :math:`\ge 1`, so (5) is finite for finite
:math:`\theta`. The Hessian does not depend on the data; it is positive semidefinite with
:math:`\mathbf{1}` in its null space (adding a constant to every logit changes nothing):

.. math::  \nabla^2 L = \operatorname{diag}(p_\theta) - p_\theta p_\theta^\top, \qquad
           (\nabla^2 L)\, v = p_\theta \odot v - p_\theta\, (p_\theta^\top v)  \tag{6}

The histogram ``c`` is a fixed-length ``bincount`` (length ``d``), so (3) is ``jit``/``vmap``
safe. The step-by-step derivation, and what the seed's asserts get wrong, is
``papers/seeds/softmax_nll.md``.

Examples:
  >>> import jax.numpy as jnp
  >>> from gradlab.derivations import softmax_nll as s
  >>> params = {"theta": jnp.array([0.5, 1.0, -0.5])}
  >>> x = jnp.array([0, 2, 1, 1])
  >>> round(float(s.softmax_nll(params, x)), 12)  # the seed's 1.1041306053367284
  1.104130605337

References:
  Seed 004 (``shared/seeds/004_*.txt``), part (a).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from gradlab import _validate as v
from gradlab.derivations._derivation import Derivation, Params


def check_data(name: str, x: jax.Array, d: int | jax.Array | None) -> None:
    """Validate integer data on the support ``{0, ..., d-1}``; shared with the mixture modules.

    NaN (float data) is reported as non-finite first; other float data is a ``TypeError``;
    values outside the support name the support and the first offending value (when concrete).
    ``d`` may be a traced integer scalar (checked traced, see ``gradlab._validate``); ``None``
    checks only ``x >= 0``.
    """
    v.check_ndim(name, x, 1)
    if np.shape(x)[0] < 1:
        raise ValueError(f"{name} must hold at least one observation; got shape {v.shape_of(x)}")
    v.check_finite(name, x)
    v.check_integer(name, x)
    if d is None:
        v.check_nonnegative(name, x)
    else:
        v.check_in_range(name, x, 0, d)


def _check(params, x) -> None:
    if not hasattr(params, "keys") or set(params.keys()) != {"theta"}:
        got = sorted(params.keys()) if hasattr(params, "keys") else type(params)
        raise ValueError(f'params must be a dict with the single key "theta"; got {got}')
    theta = params["theta"]
    v.check_ndim('params["theta"]', theta, 1)
    v.check_floating('params["theta"]', theta)
    if theta.shape[0] < 1:
        raise ValueError('params["theta"] must hold at least one logit; got shape (0,)')
    v.check_finite('params["theta"]', theta)
    check_data("x", x, theta.shape[0])


def log_probs(theta: jax.Array) -> jax.Array:
    """``log p_theta(k) = theta_k - LSE(theta)`` for every class, eq. (4); never overflows."""
    return theta - jax.nn.logsumexp(theta)  # (4)


def softmax_nll(params: Params, x: jax.Array) -> jax.Array:
    """``L(theta) = -(1/N) sum_i log p_theta(x_i)``, eq. (2), evaluated as eq. (5).

    Args:
      params: ``{"theta": (d,)}`` floating logits.
      x: integer observations, shape ``(N,)``, each in ``{0, ..., d-1}``.

    Returns:
      The scalar mean negative log-likelihood.
    """
    _check(params, x)
    theta = params["theta"]
    return jax.nn.logsumexp(theta) - jnp.mean(theta[x])  # (5)


def _probs_counts(params, x):
    theta = params["theta"]
    d, n = theta.shape[0], x.shape[0]
    p = jnp.exp(log_probs(theta))  # (1) via (4)
    freq = jnp.bincount(x, length=d).astype(theta.dtype) / n  # c / N, fixed length d
    return p, freq


def softmax_nll_grad(params: Params, x: jax.Array) -> Params:
    """``grad L = -(1/N) sum_i (e_{x_i} - p) = p - c/N``, eq. (3)."""
    _check(params, x)
    p, freq = _probs_counts(params, x)
    return {"theta": p - freq}  # (3)


def softmax_nll_hessian(params: Params, x: jax.Array) -> dict[str, Params]:
    """``diag(p) - p p^T``, eq. (6), as ``{"theta": {"theta": (d, d)}}`` like ``jax.hessian``."""
    _check(params, x)
    p = jnp.exp(log_probs(params["theta"]))
    return {"theta": {"theta": jnp.diag(p) - jnp.outer(p, p)}}  # (6)


def softmax_nll_hvp(params: Params, x: jax.Array, tangent: Params) -> Params:
    """``p * v - p (p . v)``, eq. (6) applied to ``tangent["theta"]`` without forming H."""
    _check(params, x)
    v.check_same_shape('tangent["theta"]', tangent["theta"], 'params["theta"]', params["theta"])
    p = jnp.exp(log_probs(params["theta"]))
    t = tangent["theta"]
    return {"theta": p * t - p * jnp.dot(p, t)}  # (6)


def make_args(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike) -> tuple:
    """``(params, x)`` with ``shape = (N, d)``: standard normal logits, uniform integer data.

    ``x[0] = 0`` and ``x[1] = d - 1`` so both ends of the support are always observed.
    """
    n, d = shape
    kt, kx = jax.random.split(key)
    params = {"theta": jax.random.normal(kt, (d,), dtype)}
    x = jax.random.randint(kx, (n,), 0, d, dtype=jnp.int32)
    x = x.at[0].set(0).at[1].set(d - 1)
    return params, x


SHAPES = ((16, 3), (200, 11))

SOFTMAX_NLL = Derivation(
    name="softmax_nll",
    loss=softmax_nll,
    grad=softmax_nll_grad,
    hessian=softmax_nll_hessian,
    hvp=softmax_nll_hvp,
    make_args=make_args,
    shapes=SHAPES,
    seed="004",
    note="papers/seeds/softmax_nll.md",
    summary="-(1/N) sum log softmax(theta)[x_i], histogram of integer data",
)
