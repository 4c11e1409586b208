"""Small data sets the seed notebooks use, drawn exactly as the seeds draw them.

They make README and docstring examples runnable as pasted, and give experiments one copy of
each draw instead of one per script.
"""

from __future__ import annotations

import numpy as np

__all__ = ["noisy_line"]


def noisy_line(n: int = 80, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    r"""Seed 002's data set: a noisy line, as the seed draws it.

    .. math::  x_i = 10\,\tfrac{i}{n-1}, \qquad y_i = 2.5 + 1.7\,x_i + \varepsilon_i,
               \qquad \varepsilon_i \sim \mathcal N(0, 1)                                 \tag{1}

    with the noise from ``np.random.default_rng(seed).normal(0, 1, n)`` (seed 002, section 1:
    ``n=80``, ``seed=42``). Its least-squares line is :math:`\theta = (2.5467, 1.6958)`; for
    :math:`J = \tfrac1n\lVert Xw + b - y\rVert^2` gradient descent is stable below
    :math:`2/\lambda_{\max} = 0.02916`.

    Args:
      n: number of points.
      seed: the NumPy generator's seed.

    Returns:
      ``(X, y)``: ``X`` of shape ``(n, 1)`` (the column :math:`x`, for ``{"w": (1,), "b": ()}``
      parameters) and ``y`` of shape ``(n,)``, float64 NumPy arrays (jax makes them float32
      unless x64 is on).

    Examples:
      >>> X, y = noisy_line()
      >>> X.shape, y.shape, round(float(y[0]), 4)
      ((80, 1), (80,), 2.8047)
    """
    if not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"n must be an integer >= 2 (points on the line); got {n!r}")
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 10, n)
    y = 2.5 + 1.7 * x + rng.normal(0, 1.0, size=n)
    return x[:, None], y
