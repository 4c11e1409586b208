"""The suite's numerics (conftest.py): strict dtype promotion by default, relaxed only by a marker
that says why, and warnings as errors (pyproject.toml)."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import pytest


def test_dtype_promotion_is_strict_by_default():
    with pytest.raises(jax.dtypes.TypePromotionError):
        jnp.ones(2, jnp.float32) + jnp.ones(2, jnp.float64)
    with pytest.raises(jax.dtypes.TypePromotionError):
        jnp.ones(2, jnp.int32) * jnp.ones(2, jnp.float32)


@pytest.mark.standard_dtypes("this test checks that the marker relaxes promotion")
def test_the_marker_relaxes_promotion_to_standard():
    assert (jnp.ones(2, jnp.int32) * jnp.ones(2, jnp.float32)).dtype == jnp.float32


def test_rank_promotion_raises():
    with pytest.raises(ValueError, match="jax_numpy_rank_promotion"):
        jnp.ones(3) - jnp.ones((3, 1))


def test_warnings_are_errors():
    with pytest.raises(UserWarning):
        warnings.warn("any warning fails the test that raised it", UserWarning, stacklevel=1)
