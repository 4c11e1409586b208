r"""Shannon entropy and the MIRAGE++ objective of seed 000, with the boundary told, not clipped.

Notation of seed 000: weights :math:`\theta \in \mathbb{R}^d_{\ge 0}` (on the simplex in the
seed's mirror descent; the formulas below only need :math:`\theta \ge 0`), parameters
``{"theta": (d,)}``, data :math:`X \in \mathbb{R}^{n\times d}`, :math:`y \in \mathbb{R}^n`,
weight :math:`\lambda \ge 0` (``lam``).

Entropy (seed 000, section 1), with :math:`0 \log 0 := 0` (the limit of :math:`x\log x` as
:math:`x \to 0^+`):

.. math::  H(\theta) = -\sum_i \theta_i \log \theta_i                                    \tag{1}
.. math::  \partial H / \partial \theta_i = -(1 + \log \theta_i)                         \tag{2}
.. math::  \nabla^2 H = \operatorname{diag}(-1/\theta_i)                                   \tag{3}

Boundary: as :math:`\theta_i \to 0^+`, (2) tends to :math:`+\infty` and (3) to
:math:`-\infty`. The hand gradient returns exactly that (``-(1 + log 0) = +inf``, never NaN, never
a clipped finite number); the value (1) stays finite. ``jax.grad`` of (1) as coded returns 0 there
(the derivative of the ``0 log 0 := 0`` branch), which is wrong: the checker reports the
non-finite hand value, and tests compare at interior points only. Seed 000 clips
:math:`\theta` to :math:`[10^{-8}, 1]` in both its loss and its gradient, which hides this
boundary (and silently changes the value for :math:`\theta_i > 1`). Negative entries are outside
the domain: an error for concrete input, NaN under ``jit`` (``log`` of a negative number).

MIRAGE++ objective exactly as seed 000's code computes it (``mse = np.mean((X@theta - y)**2)``;
its markdown writes :math:`\lVert X\theta - y\rVert^2` without the mean):

.. math::  L(\theta) = \tfrac{1}{n}\lVert X\theta - y\rVert^2 + \lambda H(\theta)      \tag{4}
.. math::  \nabla L = \tfrac{2}{n} X^\top (X\theta - y) - \lambda (1 + \log\theta)      \tag{5}
.. math::  \nabla^2 L = \tfrac{2}{n} X^\top X + \lambda \operatorname{diag}(-1/\theta)  \tag{6}

Minimizing (4) with :math:`\lambda > 0` *lowers* the entropy: it rewards concentrated weights,
the opposite of the seed's stated aim ("encourages the model's weights to be spread out"). The
objective that matches the aim subtracts the entropy:

.. math::  L_{\text{maxent}}(\theta) = \tfrac{1}{n}\lVert X\theta - y\rVert^2
           - \lambda H(\theta)                                                              \tag{7}
.. math::  \nabla L_{\text{maxent}} = \tfrac{2}{n} X^\top (X\theta - y)
           + \lambda (1 + \log\theta)                                                     \tag{8}
.. math::  \nabla^2 L_{\text{maxent}} = \tfrac{2}{n} X^\top X
           + \lambda \operatorname{diag}(1/\theta)                                        \tag{9}

(9) is positive definite for :math:`\theta > 0`, so (7) is strictly convex; (6) need not be.
The MSE parts reuse ``mse.py`` (eqs. (2), (3), (6) there, :math:`c = 2/n`, bias fixed at 0).
The step-by-step derivation is ``papers/seeds/entropy_mirage.md``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from gradlab import _validate as v
from gradlab.derivations import mse as _mse
from gradlab.derivations._derivation import Derivation, Params
from gradlab.derivations.l1 import check_penalty


def _check_theta(params) -> None:
    v.check_keys("params", params, ("theta",))
    theta = params["theta"]
    v.check_ndim('params["theta"]', theta, 1)
    v.check_floating('params["theta"]', theta)
    v.check_finite('params["theta"]', theta)
    v.check_nonnegative('params["theta"]', theta)


def _check(params, X, y, lam) -> None:
    _check_theta(params)
    v.check_ndim("X", X, 2)
    n, d = X.shape
    v.check_shape("y", y, (n,))
    v.check_shape('params["theta"]', params["theta"], (d,))
    v.check_finite("X", X)
    v.check_finite("y", y)
    check_penalty("lam", lam)


# ---- entropy ------------------------------------------------------------------------------------


def _neg_entropy(theta: jax.Array) -> jax.Array:
    # sum theta log theta with 0 log 0 := 0: log(1) = 0 stands in at theta == 0, so the value is
    # exact and finite there, and a negative entry still gives NaN (log of a negative number).
    safe = jnp.where(theta == 0, jnp.ones_like(theta), theta)
    return jnp.dot(theta, jnp.log(safe))


def _entropy_grad(theta: jax.Array) -> jax.Array:
    return -(1 + jnp.log(theta))  # (2): +inf at theta_i = 0, NaN for theta_i < 0


def entropy(params: Params) -> jax.Array:
    """``H = -sum theta log theta`` with ``0 log 0 = 0``, eq. (1).

    Args:
      params: ``{"theta": (d,)}``, entries ``>= 0``.

    Returns:
      The entropy, a scalar (``log d`` at the uniform point of the simplex).

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(entropy({"theta": jnp.array([0.5, 0.5, 0.0])})), 6)
      0.693147
    """
    _check_theta(params)
    return -_neg_entropy(params["theta"])  # (1)


def entropy_grad(params: Params) -> Params:
    """``-(1 + log theta)``, eq. (2); ``+inf`` where ``theta_i = 0`` (not clipped)."""
    _check_theta(params)
    return {"theta": _entropy_grad(params["theta"])}


def entropy_hessian(params: Params) -> dict[str, Params]:
    """``diag(-1/theta)``, eq. (3); ``-inf`` on the diagonal where ``theta_i = 0``."""
    _check_theta(params)
    return {"theta": {"theta": jnp.diag(-1 / params["theta"])}}  # (3)


def entropy_hvp(params: Params, tangent: Params) -> Params:
    """``-v / theta``, eq. (3) applied to ``tangent``."""
    _check_theta(params)
    return {"theta": -tangent["theta"] / params["theta"]}  # (3)


# ---- MIRAGE++ (4)-(6) and its max-entropy variant (7)-(9) ---------------------------------------


def _linear(params):
    theta = params["theta"]
    return {"w": theta, "b": jnp.zeros((), theta.dtype)}


def _mse_value(params, X, y):
    return _mse.mse_mean(_linear(params), X, y)


def _mse_grad(params, X, y):
    return _mse.mse_mean_grad(_linear(params), X, y)["w"]


def mse_term(params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike) -> jax.Array:
    """``(1/n) ||X theta - y||^2``, the first term of eqs. (4) and (7)."""
    _check(params, X, y, lam)
    return _mse_value(params, X, y)


def mse_term_grad(params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike) -> Params:
    """``(2/n) X^T (X theta - y)``, the first term of eqs. (5) and (8)."""
    _check(params, X, y, lam)
    return {"theta": _mse_grad(params, X, y)}


def _objective(params, X, y, lam, sign):
    _check(params, X, y, lam)
    return _mse_value(params, X, y) - sign * lam * _neg_entropy(params["theta"])  # (4) / (7)


def _objective_grad(params, X, y, lam, sign):
    _check(params, X, y, lam)
    theta = params["theta"]
    return {"theta": _mse_grad(params, X, y) + (sign * lam) * _entropy_grad(theta)}  # (5) / (8)


def _objective_hessian(params, X, y, lam, sign):
    _check(params, X, y, lam)
    n = X.shape[0]
    hmse = (2 / n) * (X.T @ X)
    return {"theta": {"theta": hmse + jnp.diag((-sign * lam) / params["theta"])}}  # (6) / (9)


def _objective_hvp(params, X, y, lam, tangent, sign):
    _check(params, X, y, lam)
    n = X.shape[0]
    t = tangent["theta"]
    u = X @ t
    return {"theta": (2 / n) * (u @ X) - (sign * lam) * t / params["theta"]}  # (6) / (9)


def mirage(params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike) -> jax.Array:
    """Seed 000's objective as written, ``mean((X theta - y)^2) + lam * H(theta)``, eq. (4).

    Minimizing it with ``lam > 0`` concentrates ``theta`` (lowers the entropy); see
    :func:`mirage_maxent` for the objective that matches the seed's stated aim.

    Args:
      params: ``{"theta": (d,)}``, entries ``>= 0``.
      X: data, ``(n, d)``.
      y: targets, ``(n,)``.
      lam: the entropy weight, a floating scalar ``>= 0``.

    Returns:
      The objective, a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> p = {"theta": jnp.array([0.5, 0.5])}
      >>> round(float(mirage(p, jnp.eye(2), jnp.array([0.5, 0.5]), jnp.array(1.0))), 6)
      0.693147
    """
    return _objective(params, X, y, lam, 1)


def mirage_grad(params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike) -> Params:
    """Eq. (5): ``(2/n) X^T (X theta - y) - lam (1 + log theta)``."""
    return _objective_grad(params, X, y, lam, 1)


def mirage_hessian(params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike) -> dict[str, Params]:
    """Eq. (6): ``(2/n) X^T X + lam diag(-1/theta)``."""
    return _objective_hessian(params, X, y, lam, 1)


def mirage_hvp(
    params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike, tangent: Params
) -> Params:
    """Eq. (6) applied to ``tangent``."""
    return _objective_hvp(params, X, y, lam, tangent, 1)


def mirage_entropy_term(params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike) -> jax.Array:
    """``+lam H(theta)``, the second term of eq. (4)."""
    _check(params, X, y, lam)
    return -jnp.asarray(lam) * _neg_entropy(params["theta"])


def mirage_entropy_term_grad(params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike) -> Params:
    """``-lam (1 + log theta)``, the second term of eq. (5)."""
    _check(params, X, y, lam)
    return {"theta": jnp.asarray(lam) * _entropy_grad(params["theta"])}


def mirage_maxent(params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike) -> jax.Array:
    """``mean((X theta - y)^2) - lam * H(theta)``, eq. (7): the sign that spreads the weights.

    Examples:
      >>> import jax.numpy as jnp
      >>> p = {"theta": jnp.array([0.5, 0.5])}
      >>> round(float(mirage_maxent(p, jnp.eye(2), jnp.array([0.5, 0.5]), jnp.array(1.0))), 6)
      -0.693147
    """
    return _objective(params, X, y, lam, -1)


def mirage_maxent_grad(params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike) -> Params:
    """Eq. (8): ``(2/n) X^T (X theta - y) + lam (1 + log theta)``."""
    return _objective_grad(params, X, y, lam, -1)


def mirage_maxent_hessian(
    params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike
) -> dict[str, Params]:
    """Eq. (9): ``(2/n) X^T X + lam diag(1/theta)``."""
    return _objective_hessian(params, X, y, lam, -1)


def mirage_maxent_hvp(
    params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike, tangent: Params
) -> Params:
    """Eq. (9) applied to ``tangent``."""
    return _objective_hvp(params, X, y, lam, tangent, -1)


def mirage_maxent_entropy_term(
    params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike
) -> jax.Array:
    """``-lam H(theta)``, the second term of eq. (7)."""
    _check(params, X, y, lam)
    return jnp.asarray(lam) * _neg_entropy(params["theta"])


def mirage_maxent_entropy_term_grad(
    params: Params, X: jax.Array, y: jax.Array, lam: ArrayLike
) -> Params:
    """``lam (1 + log theta)``, the second term of eq. (8)."""
    _check(params, X, y, lam)
    return {"theta": -jnp.asarray(lam) * _entropy_grad(params["theta"])}


# ---- examples and records -----------------------------------------------------------------------


def _simplex(key, d, dtype):
    # softmax of normals: every entry > 0, sum 1 (the seed's domain).
    return jax.nn.softmax(jax.random.normal(key, (d,), dtype))


def make_entropy_args(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike) -> tuple:
    """``(params,)`` with ``shape = (d,)``: ``theta`` a random interior point of the simplex."""
    (d,) = shape
    return ({"theta": _simplex(key, d, dtype)},)


def make_args(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike) -> tuple:
    """``(params, X, y, lam)`` with ``shape = (n, d)``: interior ``theta`` on the simplex, normal
    ``X``, ``y = X theta* + 0.1 noise`` as in the seed, ``lam`` uniform in ``[0.05, 1]``."""
    n, d = shape
    kt, kx, ks, ke, kl = jax.random.split(key, 5)
    theta = _simplex(kt, d, dtype)
    X = jax.random.normal(kx, (n, d), dtype)
    y = X @ _simplex(ks, d, dtype) + 0.1 * jax.random.normal(ke, (n,), dtype)
    lam = jax.random.uniform(kl, (), dtype, 0.05, 1.0)
    return {"theta": theta}, X, y, lam


ENTROPY = Derivation(
    name="entropy",
    loss=entropy,
    grad=entropy_grad,
    hessian=entropy_hessian,
    hvp=entropy_hvp,
    make_args=make_entropy_args,
    shapes=((5,), (64,)),
    seed="000",
    note="papers/seeds/entropy_mirage.md",
    summary="-sum theta log theta, 0 log 0 = 0, gradient +inf at theta_i = 0",
)

MIRAGE = Derivation(
    name="mirage",
    loss=mirage,
    grad=mirage_grad,
    hessian=mirage_hessian,
    hvp=mirage_hvp,
    make_args=make_args,
    shapes=((16, 3), (80, 7)),
    terms={"mse": mse_term, "entropy": mirage_entropy_term},
    term_grads={"mse": mse_term_grad, "entropy": mirage_entropy_term_grad},
    seed="000",
    note="papers/seeds/entropy_mirage.md",
    summary="seed 000 as written: mean((X theta-y)^2) + lam*H (minimizing concentrates theta)",
)

MIRAGE_MAXENT = Derivation(
    name="mirage_maxent",
    loss=mirage_maxent,
    grad=mirage_maxent_grad,
    hessian=mirage_maxent_hessian,
    hvp=mirage_maxent_hvp,
    make_args=make_args,
    shapes=((16, 3), (80, 7)),
    terms={"mse": mse_term, "entropy": mirage_maxent_entropy_term},
    term_grads={"mse": mse_term_grad, "entropy": mirage_maxent_entropy_term_grad},
    seed="000",
    note="papers/seeds/entropy_mirage.md",
    summary="seed 000's stated aim: mean((X theta-y)^2) - lam*H (spreads theta)",
)
