"""Seed 002's learning-rate experiment as one compiled sweep: ``gradlab sweep``.

Seed 002 (section 8) trains batch gradient descent on ``y = 2.5 + 1.7 x + noise`` (80 points,
``x = linspace(0, 10, 80)``, noise ``N(0, 1)`` from ``default_rng(42)``, a bias column) with a
Python loop over ``lrs = [0.001, 0.01, 0.05, 0.2]``, 200 iterations each. Here the seed's four
rates and a dense log grid run as one ``jit(vmap(gradlab.fit))``; the frontier figure shows
where runs start to diverge against the stability bound ``2 / lambda_max`` (about 0.029 for
``J = (1/n)||X theta - y||^2``), which the seed's 0.05 and 0.2 exceed.

Commands (each writes ``table.csv``, ``table.json`` and figures):

    gradlab sweep experiments/sweeps/linreg_lr.py                  # SWEEP: 68 learning rates
    gradlab sweep experiments/sweeps/linreg_lr.py --set "lr=logspace(-4,0,256)"
    gradlab sweep experiments/sweeps/linreg_lr.py:RIDGE            # lr x l2 on the Gram path

Cost: a few seconds on 2 CPU cores, most of it compilation. Expected: the seed's 0.001 and
0.01 converge (0.01 reaches MSE about 1.0 only after many more steps; 200 is the seed's
budget), 0.05 and 0.2 diverge, and the first diverged rate of the dense grid lies just above
the bound.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax

import gradlab
from gradlab.sweeps import quadratic_train

STEPS = 200  # the seed's iters=200 in section 8
SEED_LRS = [0.001, 0.01, 0.05, 0.2]


def seed_data():
    """Seed 002, sections 1-2: the noisy line and its design matrix with a bias column."""
    column, y = gradlab.datasets.noisy_line()
    x = column[:, 0]
    X = np.c_[np.ones_like(x), x]
    return X.astype(np.float32), y.astype(np.float32)


X, Y = seed_data()


def mse(theta, X, y):
    """Seed 002, section 3: ``J = (1/n) ||X theta - y||^2``."""
    r = X @ theta - y
    return r @ r / X.shape[0]


def train(hp, key):
    """Seed 002's ``batch_gd`` as ``gradlab.fit`` with ``optax.sgd(lr)`` from zeros."""
    del key  # full batch
    lr = jnp.asarray(hp["lr"], X.dtype)  # --set gives float64 rates when x64 is on
    return gradlab.fit(mse, jnp.zeros(2, X.dtype), (X, Y), optax.sgd(lr), STEPS)


BOUND = float(gradlab.stability.max_stable_lr(mse, jnp.zeros(2, X.dtype), X, Y))
LRS = np.unique(np.r_[SEED_LRS, np.logspace(-4, 0, 64)]).astype(np.float32)

SWEEP = dict(train=train, grid={"lr": LRS}, plots={"bound": BOUND, "color": "lr"})

RIDGE = dict(
    train=quadratic_train(X, Y, STEPS),
    grid={"lr": np.logspace(-3, -1, 24).astype(np.float32), "l2": [0.0, 0.01, 0.1, 1.0]},
    plots={"bound": BOUND, "heatmap": ("lr", "l2")},
)
