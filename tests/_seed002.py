"""Seed 002's dataset, shared by the training tests."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def seed002_data():
    """Seed 002, section 1: ``y = 2.5 + 1.7 x + N(0, 1)``, ``x = linspace(0, 10, 80)``, rng seed
    42; returned as ``(X, y)`` with ``X`` of shape ``(80, 1)``."""
    rng = np.random.default_rng(42)
    x = np.linspace(0, 10, 80)
    y = 2.5 + 1.7 * x + rng.normal(0, 1.0, size=len(x))
    return jnp.asarray(x[:, None]), jnp.asarray(y)
