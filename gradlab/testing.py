"""pytest helpers for hand gradients: assertions, the registry through the checker, strict dtypes.

Registered as a pytest plugin by the root ``conftest.py``
(``pytest_plugins = ["gradlab.testing"]``), so its fixtures are available in every test; the
helpers are plain functions usable anywhere.

Examples:
  >>> def test_my_loss(strict_dtypes):
  ...     assert_grad_close(my_loss, my_grad, params, X, y)  # raises with the report's table
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import pytest

from gradlab.check import GradReport, assert_grad, check_grad, check_hessian

__all__ = [
    "assert_grad_close",
    "check_derivation",
    "check_registry",
    "grad_checker",
    "strict_dtypes",
]


def assert_grad_close(loss: Callable, grad: Callable, *args: Any, **kwargs: Any) -> GradReport:
    """Assert that ``grad`` is the gradient of ``loss`` (``gradlab.assert_grad``).

    Raises ``gradlab.GradientMismatch`` (an ``AssertionError``, so pytest shows it as a failed
    assertion) whose message is the three-witness table: leaf path, element index, hand, autodiff
    and finite differences, kinks, blame. Takes ``check_grad``'s keyword arguments.
    """
    __tracebackhide__ = True
    return assert_grad(loss, grad, *args, **kwargs)


def check_derivation(
    derivation,
    key: jax.Array | int = 0,
    shape: tuple[int, ...] | None = None,
    dtype=jnp.float64,
    *,
    mode: str = "full",
    hessian: bool = True,
    args: tuple | None = None,
) -> dict[str, GradReport]:
    """Check one registry ``Derivation``: its gradient (with its terms) and, if given, Hessian/HVP.

    Returns:
      ``{"grad": report}`` plus ``"hessian"`` / ``"hvp"`` reports where the record has them.
    """
    if args is None:
        k = jax.random.key(key) if isinstance(key, int) else key
        args = derivation.example(k, shape, dtype)
    out = {
        "grad": check_grad(
            derivation.loss,
            derivation.grad,
            *args,
            argnums=derivation.argnums,
            terms=derivation.terms,
            term_grads=derivation.term_grads,
            mode=mode,
        )
    }
    if hessian:
        if derivation.hessian is not None:
            out["hessian"] = check_hessian(
                derivation.loss, derivation.hessian, *args, argnums=derivation.argnums
            )
        if derivation.hvp is not None:
            out["hvp"] = check_hessian(
                derivation.loss, derivation.hvp, *args, argnums=derivation.argnums, kind="hvp"
            )
    return out


def check_registry(
    registry: Mapping | None = None,
    names: Iterable[str] | None = None,
    *,
    key: int = 0,
    all_shapes: bool = False,
    dtype=jnp.float64,
    mode: str = "full",
    hessian: bool = True,
) -> dict[str, dict[str, GradReport]]:
    """Run :func:`check_derivation` over the registry (first shape, or all with ``all_shapes``).

    Returns:
      ``{name or "name@shape": {"grad": report, ...}}``.
    """
    if registry is None:
        from gradlab.derivations import REGISTRY as registry  # noqa: N811 - tests/CLI only
    out = {}
    for name in names or registry:
        d = registry[name]
        for shape in d.shapes if all_shapes else d.shapes[:1]:
            label = f"{name}@{'x'.join(map(str, shape))}" if all_shapes else name
            out[label] = check_derivation(d, key, shape, dtype, mode=mode, hessian=hessian)
    return out


@pytest.fixture
def strict_dtypes():
    """Strict dtype promotion inside the test (``jax.numpy_dtype_promotion("strict")``)."""
    with jax.numpy_dtype_promotion("strict"):
        yield


@pytest.fixture
def grad_checker():
    """:func:`assert_grad_close`, as a fixture for tests that prefer injection."""
    return assert_grad_close
