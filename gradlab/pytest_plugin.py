"""gradlab's pytest plugin: fixtures for tests of hand gradients.

Registered through the ``pytest11`` entry point (``pyproject.toml``), so installing gradlab
makes these fixtures available in every project's tests; nothing to add to a ``conftest.py``.
Disable it with ``pytest -p no:gradlab``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import jax
import pytest

from gradlab.check import GradReport
from gradlab.testing import assert_grad_close


@pytest.fixture
def strict_dtypes() -> Iterator[None]:
    """Strict dtype promotion inside the test (``jax.numpy_dtype_promotion("strict")``)."""
    with jax.numpy_dtype_promotion("strict"):
        yield


@pytest.fixture
def grad_checker() -> Callable[..., GradReport]:
    """``gradlab.testing.assert_grad_close``, as a fixture for tests that prefer injection."""
    return assert_grad_close
