"""pytest helpers for hand gradients: assertions, the registry through the checker, one test per
derivation.

The fixtures (``strict_dtypes``, ``grad_checker``) live in :mod:`gradlab.pytest_plugin`, which
``pip install gradlab`` registers with pytest through the ``pytest11`` entry point: every project
that installs gradlab has them, with no ``conftest.py`` line. This module imports nothing from
pytest at import time (``parametrize_grads`` imports it when called), so the CLI and library code
can use its helpers without pytest.

Examples:
  >>> import jax.numpy as jnp
  >>> from gradlab.testing import assert_grad_close
  >>> report = assert_grad_close(lambda w: jnp.sum(w**2), lambda w: 2 * w, jnp.ones(3))
  >>> report.ok
  True

In a test module::

  from gradlab.derivations import REGISTRY
  from gradlab.testing import parametrize_grads

  @parametrize_grads(REGISTRY)              # one test per derivation, ids mse_mean, l1, ...
  def test_grad(case, strict_dtypes):
      case.check()                          # raises gradlab.GradientMismatch with the table
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from gradlab._headline import headline
from gradlab.check import GradientMismatch, GradReport, check_grad, check_hessian

__all__ = [
    "GradCase",
    "assert_grad_close",
    "check_derivation",
    "check_registry",
    "grad_cases",
    "parametrize_grads",
]


def _mismatch(report: GradReport) -> GradientMismatch:
    """``GradientMismatch`` whose message is a one-line reason, then the report's table."""
    err = GradientMismatch(report)
    err.args = (f"{headline(report)}\n{report}",)
    return err


def assert_grad_close(loss: Callable, grad: Callable, *args: Any, **kwargs: Any) -> GradReport:
    """Assert that ``grad`` is the gradient of ``loss`` (``gradlab.check_grad``, raising).

    Raises ``gradlab.GradientMismatch`` (an ``AssertionError``, so pytest shows it as a failed
    assertion). Its message reads like pytest's own: a first line naming the failing leaf, how
    many elements differ and the worst with its relative error; then the three-witness table
    (leaf, index, hand, autodiff, finite differences, kinks, blame). Takes ``check_grad``'s
    keyword arguments.

    Returns:
      The report, when it is ok.
    """
    __tracebackhide__ = True
    report = check_grad(loss, grad, *args, **kwargs)
    if not report.ok:
        raise _mismatch(report)
    return report


def _float64_available(dtype) -> contextlib.AbstractContextManager:
    """``jax.enable_x64(True)`` when float64 is asked for and x64 is off, else nothing."""
    wants64 = dtype is not None and jnp.dtype(dtype) == jnp.float64
    if wants64 and jax.dtypes.canonicalize_dtype(jnp.float64) != jnp.float64:
        return jax.enable_x64(True)
    return contextlib.nullcontext()


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

    float64 (the default) is checked in float64 even when JAX's x64 is off: x64 is turned on for
    the call and restored, so no dtype-truncation warnings and no float32 in disguise.

    Returns:
      ``{"grad": report}`` plus ``"hessian"`` / ``"hvp"`` reports where the record has them.
    """
    with _float64_available(dtype):
        if args is None:
            k = jax.random.key(key) if isinstance(key, int) else key
            args = derivation.example(k, shape, dtype)
        kw = {"argnums": derivation.argnums}
        out = {
            "grad": check_grad(
                derivation.loss,
                derivation.grad,
                *args,
                terms=derivation.terms,
                term_grads=derivation.term_grads,
                mode=mode,
                **kw,
            )
        }
        if hessian and derivation.hessian is not None:
            out["hessian"] = check_hessian(derivation.loss, derivation.hessian, *args, **kw)
        if hessian and derivation.hvp is not None:
            out["hvp"] = check_hessian(derivation.loss, derivation.hvp, *args, kind="hvp", **kw)
    return out


def check_registry(
    registry: Mapping | None = None,
    names: Iterable[str] | None = None,
    *,
    key: jax.Array | int = 0,
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
        from gradlab.derivations import REGISTRY  # tests/CLI only

        registry = REGISTRY
    out = {}
    for name in names or registry:
        d = registry[name]
        for shape in d.shapes if all_shapes else d.shapes[:1]:
            label = f"{name}@{'x'.join(map(str, shape))}" if all_shapes else name
            out[label] = check_derivation(d, key, shape, dtype, mode=mode, hessian=hessian)
    return out


# ---- one pytest test per derivation ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GradCase:
    """One derivation to check: a loss, its hand gradient and its arguments, under a test id.

    ``args`` is a tuple, or a function ``() -> tuple`` called when the test runs (so collecting
    the tests builds no arrays). ``derivation`` is the registry record when the case came from
    one; then :meth:`check` also checks its hand Hessian and HVP.
    """

    id: str
    loss: Callable
    grad: Callable
    args: tuple | Callable[[], tuple]
    derivation: Any = None
    shape: tuple[int, ...] | None = None
    dtype: Any = jnp.float64

    def arguments(self) -> tuple:
        """The argument tuple (built now if ``args`` is a function)."""
        return self.args() if callable(self.args) else tuple(self.args)

    def check(self, **kwargs: Any) -> dict[str, GradReport]:
        """Assert the gradient (and a registry record's Hessian/HVP); return the reports.

        Raises ``gradlab.GradientMismatch`` for the first report that is not ok. Keyword
        arguments go to ``check_grad`` (a plain case) or :func:`check_derivation` (a registry
        record: ``mode``, ``hessian``, ``key``).
        """
        __tracebackhide__ = True
        if self.derivation is not None:
            with _float64_available(self.dtype):
                reports = check_derivation(
                    self.derivation, shape=self.shape, dtype=self.dtype, **kwargs
                )
        else:
            reports = {"grad": check_grad(self.loss, self.grad, *self.arguments(), **kwargs)}
        for report in reports.values():
            if not report.ok:
                raise _mismatch(report)
        return reports


def _name(f: Callable) -> str:
    return getattr(f, "__name__", type(f).__name__).replace("<lambda>", "lambda")


def _example_of(item: Any, shape: tuple[int, ...], dtype: Any) -> Callable[[], tuple]:
    """The derivation's example arguments at ``shape``, made when the case runs."""
    return lambda: item.example(jax.random.key(0), shape, dtype)


def _one_case(item: Any, dtype, all_shapes: bool) -> list[GradCase]:
    if hasattr(item, "make_args") and hasattr(item, "shapes"):  # a registry Derivation
        shapes = item.shapes if all_shapes else item.shapes[:1]
        return [
            GradCase(
                f"{item.name}@{'x'.join(map(str, s))}" if all_shapes else item.name,
                item.loss,
                item.grad,
                _example_of(item, s, dtype),
                derivation=item,
                shape=s,
                dtype=dtype,
            )
            for s in shapes
        ]
    if isinstance(item, GradCase):
        return [item]
    if not isinstance(item, tuple) or len(item) not in (3, 4):
        raise TypeError(
            "each case must be a Derivation, a GradCase, (loss, grad, args) or "
            f"(id, loss, grad, args); got {type(item).__name__} {item!r:.80}"
        )
    if len(item) == 4:
        return [GradCase(str(item[0]), *item[1:])]
    loss, grad, args = item
    return [GradCase(f"{_name(loss)}-{_name(grad)}", loss, grad, args)]


def grad_cases(
    source: Mapping | Iterable, *, dtype=jnp.float64, all_shapes: bool = False
) -> list[GradCase]:
    """The :class:`GradCase` list of a registry or of ``(loss, grad, args)`` tuples.

    Args:
      source: a registry (``{name: Derivation}``, e.g. ``gradlab.REGISTRY``), or an iterable of
        ``Derivation``, ``GradCase``, ``(loss, grad, args)`` or ``(id, loss, grad, args)``.
      dtype: the dtype registry arguments are built in.
      all_shapes: registry records: every size in ``shapes`` (ids ``name@32x4``), not the first.

    Returns:
      One case per derivation (per shape), with unique readable ids: the registry name, or
      ``loss-grad`` from the functions' names (``-2``, ``-3`` appended to repeats).
    """
    items = source.values() if isinstance(source, Mapping) else source
    cases = [c for item in items for c in _one_case(item, dtype, all_shapes)]
    seen: dict[str, int] = {}
    unique = []
    for c in cases:
        seen[c.id] = seen.get(c.id, 0) + 1
        unique.append(c if seen[c.id] == 1 else dataclasses.replace(c, id=f"{c.id}-{seen[c.id]}"))
    return unique


def parametrize_grads(source: Mapping | Iterable, argname: str = "case", **kwargs: Any):
    """``pytest.mark.parametrize`` over :func:`grad_cases`: one test per derivation.

    Args:
      source: as in :func:`grad_cases`.
      argname: the test's parameter that receives each :class:`GradCase`.
      **kwargs: :func:`grad_cases`' ``dtype`` and ``all_shapes``.

    Returns:
      The mark; the test calls ``case.check()``.
    """
    import pytest

    cases = grad_cases(source, **kwargs)
    return pytest.mark.parametrize(argname, cases, ids=[c.id for c in cases])
