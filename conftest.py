"""Strict numerics for every test: float64 on, rank promotion raises, dtype promotion strict.

``(n,) - (n, 1)`` silently broadcasts to ``(n, n)`` in numpy; with
``jax_numpy_rank_promotion="raise"`` it raises in jax. With
``jax_numpy_dtype_promotion="strict"`` a float32 model meeting a float64 constant, or an int
meeting a float, raises instead of silently widening. Strict promotion fights optax in places
gradlab does not own (``adam``'s bias correction computes ``float ** int32``): a test that
runs such code is marked ``@pytest.mark.standard_dtypes("why")`` and runs under standard
promotion; the reason is required, so each relaxation says what needs it.
"""

import os
from importlib.metadata import entry_points

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")
# Tests that call the CLI in-process must not write compiled programs to the user's cache
# (gradlab/_compile_cache.py); the tests of the cache set their own environment.
os.environ.setdefault("GRADLAB_NO_COMPILE_CACHE", "1")

# gradlab's fixtures come from its pytest11 entry point (pyproject.toml) once it is installed
# (`make` installs it editable). A checkout run without that install registers the plugin here;
# registering it twice would be an error.
if not any(ep.value == "gradlab.pytest_plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["gradlab.pytest_plugin"]


@pytest.fixture(autouse=True)
def _standard_dtypes_when_marked(request):
    """Standard dtype promotion for a test marked ``standard_dtypes``; strict for all others."""
    marker = request.node.get_closest_marker("standard_dtypes")
    if marker is None:
        yield
        return
    if not marker.args or not isinstance(marker.args[0], str) or not marker.args[0].strip():
        raise pytest.UsageError(
            f"{request.node.nodeid}: @pytest.mark.standard_dtypes needs a reason string "
            "(which code fails under strict promotion, and why it is not gradlab's to fix)"
        )
    with jax.numpy_dtype_promotion("standard"):
        yield
