r"""Closed-form least squares and ridge: the oracles iterative training is tested against.

Linear model with bias, parameters ``{"w": (d,), "b": ()}``, residual
:math:`r = Xw + b\mathbf 1 - y` (``gradlab.derivations.mse``, eq. (1)).

**Least squares.** :math:`\min_{w,b}\lVert r\rVert^2`. With an intercept, centering removes
:math:`b`: with :math:`\bar x = X^\top\mathbf 1/n`, :math:`\bar y = \mathbf 1^\top y/n`,
:math:`X_c = X - \mathbf 1\bar x^\top`, :math:`y_c = y - \bar y\mathbf 1`,

.. math::  w = \arg\min_w \lVert X_c w - y_c\rVert^2 = X_c^+ y_c,\qquad
           b = \bar y - \bar x^\top w                                                  \tag{1}

solved by SVD (``jnp.linalg.lstsq``), whose error grows like :math:`\kappa(X)\,\epsilon`.

**The seed's normal equation** (seed 002, section 6) appends a column of ones,
:math:`A = [\mathbf 1, X]`, :math:`\theta = (b, w)`, and solves

.. math::  A^\top A\,\theta = A^\top y                                                 \tag{2}

Forming :math:`A^\top A` squares the condition number,
:math:`\kappa(A^\top A) = \kappa(A)^2`, and the computed :math:`\theta` has relative error
up to about :math:`\kappa(A^\top A)\,\epsilon`. gradlab warns (:class:`IllConditionedWarning`)
when

.. math::  \kappa(A^\top A) > \epsilon^{-1/2}                                          \tag{3}

(:math:`6.7\times10^{7}` in float64, :math:`2.9\times10^{3}` in float32): past it, fewer than
half of the digits of :math:`\theta` can be trusted (error above :math:`\sqrt\epsilon
\approx 1.5\times10^{-8}` in float64, the tolerance gradlab's tests compare optimizers at),
while (1), on the centered data, delivers about :math:`\kappa(X_c)\,\epsilon` when the
residual is small, and centering removes the conditioning that the ones column adds.

**Ridge**, in gradlab's two equivalent conventions (seed 001 and seed 002 scalings):

.. math::  \tfrac{1}{2n}\lVert r\rVert^2 + \tfrac{\lambda}{2}\lVert w\rVert^2
           \quad\equiv\quad \tfrac1n\lVert r\rVert^2 + \lambda\lVert w\rVert^2          \tag{4}

(one is half the other, same minimizer), the bias not penalized. Setting the gradient to 0
after centering: :math:`(X_c^\top X_c + n\lambda I)\,w = X_c^\top y_c`. scikit-learn's
``Ridge(alpha)`` minimizes :math:`\lVert r\rVert^2 + \alpha\lVert w\rVert^2`, so
:math:`\alpha = n\lambda`. With the thin SVD :math:`X_c = U\,\mathrm{diag}(s)\,V^\top`
(the eigendecomposition :math:`X_c^\top X_c = V\,\mathrm{diag}(s^2)\,V^\top`, obtained
without forming and squaring :math:`X_c^\top X_c`), one decomposition serves every
:math:`\lambda`:

.. math::  w(\lambda) = V\,\mathrm{diag}\!\Big(\frac{s}{s^2 + n\lambda}\Big)\,U^\top y_c,\qquad
           b(\lambda) = \bar y - \bar x^\top w(\lambda)                                \tag{5}

At :math:`\lambda = 0`, singular values below :math:`\epsilon\max(n,d)\,s_{\max}` are
dropped, as ``lstsq`` does, so (5) gives the minimum-norm least-squares solution (1).
"""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from gradlab import _validate as v


class IllConditionedWarning(UserWarning):
    """The normal-equation matrix :math:`A^\\top A` is too ill-conditioned to trust, eq. (3)."""


def _check_data(X, y) -> None:
    v.check_ndim("X", X, 2)
    v.check_floating("X", X)
    if X.shape[0] < 1:
        raise ValueError(
            f"X must hold at least one row (an example) to fit; got shape {v.shape_of(X)}"
        )
    v.check_shape("y", y, (X.shape[0],))
    v.check_floating("y", y)
    v.check_finite("X", X)
    v.check_finite("y", y)


def _solvable(a: jax.Array) -> jax.Array:
    """``a`` in a dtype XLA's SVD and LU accept: float16/bfloat16 are solved in float32."""
    return a.astype(jnp.float32) if jnp.finfo(a.dtype).bits < 32 else a


def _in_dtype(params: dict, dtype) -> dict:
    """``params`` in the data's dtype as jax holds it (float64 data with x64 off is float32)."""
    dtype = jax.dtypes.canonicalize_dtype(dtype)
    return jax.tree.map(lambda a: a.astype(dtype), params)


def _center(X, y, fit_intercept: bool):
    if fit_intercept:
        x_mean = jnp.mean(X, axis=0)
        y_mean = jnp.mean(y)
        return X - x_mean[None, :], y - y_mean, x_mean, y_mean
    zero = jnp.zeros((), X.dtype)
    return X, y, jnp.zeros(X.shape[1], X.dtype), zero


def lstsq(
    X: jax.Array, y: jax.Array, *, fit_intercept: bool = True, rcond: float | None = None
) -> dict:
    r"""Least squares by SVD, with the intercept handled by centering, eq. (1).

    .. math::  w = X_c^+ y_c,\qquad b = \bar y - \bar x^\top w

    Args:
      X: ``(n, d)`` design matrix, without a column of ones.
      y: ``(n,)`` targets (not ``(n, 1)``).
      fit_intercept: fit ``b``; with ``False``, ``b = 0`` and ``w = X^+ y``.
      rcond: relative cutoff for small singular values (``jnp.linalg.lstsq``'s default when
        ``None``).

    Returns:
      ``{"w": (d,), "b": ()}``, the minimizer of ``mse_mean`` and ``mse_half_mean`` (the
      minimum-norm ``w`` when ``X_c`` is rank deficient), in ``X``'s dtype (float16 and
      bfloat16 data are solved in float32, which XLA's SVD needs, and rounded back).

    Raises:
      ValueError: ``X`` with no rows, non-finite data, mismatched shapes.

    Examples:
      >>> import jax.numpy as jnp
      >>> from gradlab.optim import lstsq
      >>> X = jnp.array([[0.0], [1.0], [2.0]]); y = 2.5 + 1.7 * X[:, 0]
      >>> p = lstsq(X, y)
      >>> bool(jnp.allclose(p["w"], 1.7) and jnp.allclose(p["b"], 2.5))
      True
    """
    _check_data(X, y)
    return _in_dtype(_lstsq(_solvable(X), _solvable(y), fit_intercept, rcond), X.dtype)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _lstsq(X, y, fit_intercept, rcond):
    Xc, yc, x_mean, y_mean = _center(X, y, fit_intercept)
    w = jnp.linalg.lstsq(Xc, yc, rcond=rcond)[0]  # (1)
    b = y_mean - x_mean @ w if fit_intercept else y_mean
    return {"w": w, "b": b}


def normal_equation(
    X: jax.Array, y: jax.Array, *, fit_intercept: bool = True, cond_threshold: float | None = None
) -> dict:
    r"""The seed's normal equation :math:`A^\top A\,\theta = A^\top y`, warning if ill-conditioned.

    .. math::  A = [\mathbf 1, X],\qquad \theta = (A^\top A)^{-1}A^\top y

    Solved with ``jnp.linalg.solve`` (the seed calls ``np.linalg.inv``; same math, one
    factorization, no explicit inverse). Kept as the seed's method and as a teaching oracle;
    prefer :func:`lstsq`, whose error is the square root of this one's (module eq. (3)).

    Args:
      X: ``(n, d)`` design matrix, without a column of ones.
      y: ``(n,)`` targets.
      fit_intercept: prepend the column of ones (seed 002's "bias trick").
      cond_threshold: warn when :math:`\kappa_2(A^\top A)` exceeds it; default
        :math:`\epsilon^{-1/2}` of the dtype of ``X``, eq. (3).

    Returns:
      ``{"w": (d,), "b": ()}``.

    Warns:
      IllConditionedWarning: when ``X`` is concrete and :math:`\kappa_2(A^\top A)` is above
        the threshold (or infinite). Under ``jit`` the values are unknown and nothing is
        checked.
    """
    _check_data(X, y)
    dtype, X, y = X.dtype, _solvable(X), _solvable(y)
    gram, rhs, cond = _normal_system(X, y, fit_intercept)
    if v.is_concrete(cond):
        threshold = (
            float(np.finfo(np.dtype(X.dtype)).eps) ** -0.5
            if cond_threshold is None
            else float(cond_threshold)
        )
        kappa = float(cond)
        if not kappa <= threshold:  # also catches inf and nan
            warnings.warn(
                f"normal_equation: cond(A^T A) = {kappa:.3g} exceeds {threshold:.3g} "
                f"(eps^-1/2 for {np.dtype(X.dtype).name}); the solution may have lost more than "
                "half its digits. Use gradlab.optim.lstsq (SVD, error ~ cond(A) eps), or "
                "center and scale the features.",
                IllConditionedWarning,
                stacklevel=2,
            )
    theta = _solve(gram, rhs)  # (2)
    if fit_intercept:
        return _in_dtype({"w": theta[1:], "b": theta[0]}, dtype)
    return _in_dtype({"w": theta, "b": jnp.zeros((), X.dtype)}, dtype)


@functools.partial(jax.jit, static_argnums=(2,))
def _normal_system(X, y, fit_intercept):
    n = X.shape[0]
    A = jnp.concatenate([jnp.ones((n, 1), X.dtype), X], axis=1) if fit_intercept else X
    gram = A.T @ A
    rhs = y @ A  # A^T y without copying A
    return gram, rhs, jnp.linalg.cond(gram)


_solve = jax.jit(jnp.linalg.solve)


def ridge_path(X: jax.Array, y: jax.Array, lams: ArrayLike, *, fit_intercept: bool = True) -> dict:
    r"""Ridge solutions for many :math:`\lambda` from one SVD of the centered data, eq. (5).

    .. math::  w(\lambda) = V\,\mathrm{diag}\Big(\frac{s}{s^2 + n\lambda}\Big)U^\top y_c

    The objective is :math:`\tfrac{1}{2n}\lVert r\rVert^2 + \tfrac{\lambda}{2}\lVert w\rVert^2`
    (equivalently :math:`\tfrac1n\lVert r\rVert^2 + \lambda\lVert w\rVert^2`), the bias
    unpenalized; scikit-learn's ``Ridge(alpha=n * lam)`` solves the same problem.

    Args:
      X: ``(n, d)`` design matrix.
      y: ``(n,)`` targets.
      lams: ``(k,)`` array of :math:`\lambda \ge 0`.
      fit_intercept: fit an unpenalized ``b`` by centering; with ``False``, ``b = 0``.

    Returns:
      ``{"w": (k, d), "b": (k,)}``: row ``i`` solves the problem for ``lams[i]``
      (``jax.tree.map(lambda a: a[i], path)`` is a params pytree).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from gradlab.optim import ridge_path
      >>> X = jax.random.normal(jax.random.key(0), (20, 3)); y = X @ jnp.array([1.0, -2.0, 0.5])
      >>> path = ridge_path(X, y, jnp.array([0.0, 0.1, 1.0]))
      >>> path["w"].shape, path["b"].shape
      ((3, 3), (3,))
    """
    _check_data(X, y)
    lams = jnp.asarray(lams, X.dtype) if not isinstance(lams, jax.Array) else lams
    v.check_ndim("lams", lams, 1)
    v.check_finite("lams", lams)
    v.check_nonnegative("lams", lams)
    path = _ridge_path(_solvable(X), _solvable(y), _solvable(lams), fit_intercept)
    return _in_dtype(path, X.dtype)


@functools.partial(jax.jit, static_argnums=(3,))
def _ridge_path(X, y, lams, fit_intercept):
    n, d = X.shape
    Xc, yc, x_mean, y_mean = _center(X, y, fit_intercept)
    U, s, Vt = jnp.linalg.svd(Xc, full_matrices=False)
    q = yc @ U  # U^T y_c
    lam = lams.astype(X.dtype)[:, None]
    den = (s * s)[None, :] + n * lam  # (k, r)
    cutoff = jnp.finfo(X.dtype).eps * max(n, d) * jnp.max(s, initial=0.0)
    keep = (lam > 0) | (s > cutoff)[None, :]
    factor = jnp.where(keep, s[None, :] / jnp.where(keep, den, 1.0), 0.0)  # (5)
    W = (factor * q[None, :]) @ Vt
    b = y_mean - W @ x_mean if fit_intercept else jnp.zeros(lams.shape, X.dtype)
    return {"w": W, "b": b}


def ridge(X: jax.Array, y: jax.Array, lam: ArrayLike, *, fit_intercept: bool = True) -> dict:
    r"""Ridge for one :math:`\lambda \ge 0`: :func:`ridge_path` at ``[lam]``, eq. (5).

    Args:
      X: ``(n, d)`` design matrix.
      y: ``(n,)`` targets.
      lam: scalar :math:`\lambda \ge 0` (sklearn ``alpha = n * lam``).
      fit_intercept: as in :func:`ridge_path`.

    Returns:
      ``{"w": (d,), "b": ()}``.
    """
    v.check_shape("lam", lam, ())
    v.check_nonnegative("lam", lam)
    path = ridge_path(
        X, y, jnp.reshape(jnp.asarray(lam, X.dtype), (1,)), fit_intercept=fit_intercept
    )
    return jax.tree.map(lambda a: a[0], path)
