"""Small pure train functions shared by the sweep tests (and their subprocess scripts)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def linreg_data(n: int = 64, d: int = 5, dtype=jnp.float32, seed: int = 0):
    """``(X, y)``: standard normal ``X`` and a noisy linear ``y``, deterministic in ``seed``."""
    kx, kw, ke = jax.random.split(jax.random.key(seed), 3)
    X = jax.random.normal(kx, (n, d), dtype)
    w = jax.random.normal(kw, (d,), dtype)
    y = X @ w + 0.1 * jax.random.normal(ke, (n,), dtype)
    return X, y


def gd_train(X, y, steps: int = 25):
    """Full-batch GD on ``(1/n)||Xw - y||^2 + l2 ||w||^2`` from a key-dependent start: the key,
    ``lr`` and optional ``l2`` hyperparameters all change the result."""
    n, d = X.shape

    def train(hp, key):
        lr = hp["lr"].astype(X.dtype)
        l2 = hp["l2"].astype(X.dtype) if "l2" in hp else jnp.zeros((), X.dtype)
        w0 = 0.1 * jax.random.normal(key, (d,), X.dtype)

        def step(w, _):
            r = X @ w - y
            loss = r @ r / n + l2 * (w @ w)
            g = (2.0 / n) * (r @ X) + 2.0 * l2 * w
            return w - lr * g, loss

        w, losses = jax.lax.scan(step, w0, None, length=steps)
        return {"w": w, "loss": losses[-1], "history": {"loss": losses}}

    return train


LRS = np.array([1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.2, 0.3, 0.5], np.float32)


def reference_sweep_grid():
    """24 configurations: 8 learning rates x 3 seeds."""
    return {"lr": LRS, "seed": np.arange(3, dtype=np.int32)}


class Stop(Exception):
    """Raised by :func:`stop_after`'s progress callback: an in-process interrupt of a sweep."""


def stop_after(k: int):
    """A ``progress`` callback that raises :class:`Stop` once chunk ``k`` is reported."""

    def progress(info):
        if info.chunk == k:
            raise Stop

    return progress
