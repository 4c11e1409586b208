"""Argument checks shared by every layer: errors that name the argument, the expectation, what came.

Shape and dtype checks run at trace time, so they work under ``jit`` and ``vmap``. Value checks
(finiteness, positivity, simplex membership) need concrete values: they run when the argument is
a concrete array and are skipped for tracers, where a check would need ``checkify``. Call the
function eagerly once (as ``gradlab.check`` does) to have them.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True when ``x`` holds values now (not a tracer inside jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


def shape_of(x) -> tuple[int, ...]:
    return tuple(np.shape(x))


def check_ndim(name: str, x, ndim: int) -> None:
    if np.ndim(x) != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s); got shape {shape_of(x)}")


def check_shape(name: str, x, expected: Sequence[int | None]) -> None:
    """Raise unless ``x.shape`` equals ``expected`` (``None`` matches any size)."""
    got = shape_of(x)
    ok = len(got) == len(expected) and all(
        e is None or e == g for e, g in zip(expected, got, strict=True)
    )
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name} has shape {got} but expected {want}")


def check_same_shape(name_a: str, a, name_b: str, b) -> None:
    if shape_of(a) != shape_of(b):
        raise ValueError(
            f"{name_a} has shape {shape_of(a)} but {name_b} has shape {shape_of(b)}; they must "
            "match exactly (gradlab never broadcasts, e.g. (n,) against (n, 1))"
        )


def check_floating(name: str, x) -> None:
    if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        raise TypeError(f"{name} must be a floating-point array; got dtype {jnp.result_type(x)}")


def check_integer(name: str, x) -> None:
    if not jnp.issubdtype(jnp.result_type(x), jnp.integer):
        raise TypeError(f"{name} must be an integer array; got dtype {jnp.result_type(x)}")


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def check_finite(name: str, x) -> None:
    """Raise if a concrete ``x`` holds NaN or inf, naming the first offending index."""
    if not is_concrete(x):
        return
    a = np.asarray(x)
    if a.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(a)
    if bad.any():
        idx = _first_bad(bad)
        raise ValueError(
            f"{name} must be finite; it holds {int(bad.sum())} non-finite value(s), "
            f"first {a[idx]} at index {idx}"
        )


def check_positive(name: str, x) -> None:
    """Raise if a concrete ``x`` has an entry <= 0."""
    if not is_concrete(x):
        return
    a = np.asarray(x)
    bad = ~(a > 0)
    if bad.any():
        idx = _first_bad(bad)
        raise ValueError(f"{name} must be > 0 everywhere; got {a[idx]} at index {idx}")


def check_nonnegative(name: str, x) -> None:
    if not is_concrete(x):
        return
    a = np.asarray(x)
    bad = ~(a >= 0)
    if bad.any():
        idx = _first_bad(bad)
        raise ValueError(f"{name} must be >= 0 everywhere; got {a[idx]} at index {idx}")


def check_simplex(name: str, x, *, axis: int = -1, atol: float | None = None) -> None:
    """Raise if a concrete ``x`` is not on the probability simplex along ``axis``."""
    if not is_concrete(x):
        return
    a = np.asarray(x)
    check_nonnegative(name, a)
    if atol is None:
        atol = 1e3 * float(np.finfo(a.dtype).eps) * max(1, a.shape[axis])
    total = a.sum(axis=axis)
    off = np.abs(total - 1.0) > atol
    if np.any(off):
        raise ValueError(
            f"{name} must sum to 1 along axis {axis} (a point on the simplex); "
            f"got sum(s) {np.asarray(total)[off].ravel()[:4].tolist()}"
        )


def check_in_range(name: str, x, low: int, high: int) -> None:
    """Raise if a concrete integer ``x`` has entries outside ``[low, high)``."""
    if not is_concrete(x):
        return
    a = np.asarray(x)
    bad = (a < low) | (a >= high)
    if bad.any():
        idx = _first_bad(bad)
        raise ValueError(
            f"{name} must lie in the support [{low}, {high - 1}]; got {a[idx]} at index {idx}"
        )


def check_scalar(name: str, x) -> None:
    """Raise unless ``x`` is a floating-point scalar (shape ``()``), e.g. a penalty weight."""
    if np.ndim(x) != 0:
        raise ValueError(f"{name} must be a scalar (shape ()); got shape {shape_of(x)}")
    check_floating(name, x)


def check_keys(name: str, tree, expected: Sequence[str]) -> None:
    """Raise unless ``tree`` is a mapping whose keys are exactly ``expected``."""
    if not hasattr(tree, "keys"):
        raise TypeError(f"{name} must be a dict with keys {sorted(expected)}; got {type(tree)}")
    if set(tree.keys()) != set(expected):
        raise ValueError(f"{name} must have keys {sorted(expected)}; got {sorted(tree.keys())}")


def check_binary(name: str, x) -> None:
    """Raise if a concrete ``x`` has an entry other than 0 or 1 (labels stored as floats)."""
    if not is_concrete(x):
        return
    a = np.asarray(x)
    bad = (a != 0) & (a != 1)
    if bad.any():
        idx = _first_bad(bad)
        raise ValueError(f"{name} must hold only 0 and 1; got {a[idx]} at index {idx}")
