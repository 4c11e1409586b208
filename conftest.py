"""Strict numerics for every test: float64 on and rank promotion raises.

``(n,) - (n, 1)`` silently broadcasts to ``(n, n)`` in numpy; with
``jax_numpy_rank_promotion="raise"`` it raises in jax. Strict dtype promotion
(``jax_numpy_dtype_promotion="strict"``) fights optax (``adam``'s bias correction computes
``float ** int32``), so it is not global: tests of code gradlab owns end to end (derivations,
checker) opt in with the ``strict_dtypes`` fixture (``gradlab.pytest_plugin``) or the
``jax.numpy_dtype_promotion("strict")`` context.
"""

import os
from importlib.metadata import entry_points

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
# Tests that call the CLI in-process must not write compiled programs to the user's cache
# (gradlab/_compile_cache.py); the tests of the cache set their own environment.
os.environ.setdefault("GRADLAB_NO_COMPILE_CACHE", "1")

# gradlab's fixtures come from its pytest11 entry point (pyproject.toml) once it is installed
# (`make` installs it editable). A checkout run without that install registers the plugin here;
# registering it twice would be an error.
if not any(ep.value == "gradlab.pytest_plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["gradlab.pytest_plugin"]
