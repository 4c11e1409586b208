"""Strict numerics for every test: float64 on and rank promotion raises.

``(n,) - (n, 1)`` silently broadcasts to ``(n, n)`` in numpy; with
``jax_numpy_rank_promotion="raise"`` it raises in jax. Strict dtype promotion
(``jax_numpy_dtype_promotion="strict"``) fights optax (``adam``'s bias correction computes
``float ** int32``), so it is not global: tests of code gradlab owns end to end (derivations,
checker) opt in with the ``strict_dtypes`` fixture from ``gradlab.testing`` or the
``jax.numpy_dtype_promotion("strict")`` context.
"""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

pytest_plugins = ["gradlab.testing"]
