"""Argument checks shared by every layer: errors that name the argument, the expectation, what came.

Shape and dtype checks run at trace time, so they work under ``jit`` and ``vmap``. Value checks
(finiteness, positivity, simplex membership, support) raise at once on a concrete argument. On a
tracer they cannot raise; they record a traced failure flag instead, when a caller has opened a
collector at the current trace level (:func:`validity`), and are skipped otherwise (a user's own
``jax.jit(loss)``). :func:`validity` turns the value checks a function makes into a
:class:`Validity`: a boolean ``bad`` and an ``int32`` ``reason`` indexing static messages, plain
arrays that cross ``jit``, ``vmap`` and ``lax.scan``, so a vmapped run reports a flagged lane with
its reason and an eager caller raises :class:`InvalidValueError`. :meth:`Validity.checkify`
re-emits the verdict as ``jax.experimental.checkify`` checks for callers that functionalize
errors with checkify.

The rule for which checks a collector sees: those made on tracers of the collector's own trace,
i.e. the checked function called directly inside the caller's ``jit``/``vmap`` (``fit`` and the
checker do so). Checks made under a transformation the function itself opens (its own
``jax.jit``, ``jax.grad``, ``lax.scan``) belong to an inner trace and are not collected (they
could not leave it).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import operator
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify as _checkify
from jax.extend.core import get_opaque_trace_state
from jax.typing import ArrayLike


def path_name(root: str, path: Sequence[Any]) -> str:
    """The name of the leaf at ``path`` under ``root`` in messages: ``params['w']``.

    The one leaf-naming rule of gradlab's errors (``root`` alone for a bare array).

    Examples:
      >>> import jax
      >>> path, _ = jax.tree_util.tree_flatten_with_path({"w": 0.0})[0][0]
      >>> path_name("params0", path)
      "params0['w']"
    """
    return root + jax.tree_util.keystr(tuple(path))


def leaf_names(tree: Any, root: str) -> list[str]:
    """:func:`path_name` of each leaf of ``tree``, in flattening order.

    Examples:
      >>> leaf_names({"w": 0.0, "b": [1.0]}, "params")
      ["params['b'][0]", "params['w']"]
    """
    paths, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [path_name(root, p) for p, _ in paths]


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values now (not a tracer inside jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


def shape_of(x: ArrayLike) -> tuple[int, ...]:
    return tuple(np.shape(x))


def static_int(name: str, x: Any, *, low: int) -> int:
    """A Python int ``>= low`` (a static size, e.g. a loop length: never an array, never a
    bool); returns it as an ``int``."""
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | np.integer):
        raise TypeError(f"{name} must be a Python int (it sizes the loop); got {x!r}")
    x = operator.index(x)
    if x < low:
        raise ValueError(f"{name} must be >= {low}; got {x}")
    return x


def check_choice(name: str, x: Any, choices: Collection[Any]) -> None:
    """Raise unless ``x`` is one of ``choices`` (a static option: a string, an enum member).

    Examples:
      >>> check_choice("precision", "tf32", ("default", "high", "highest"))
      Traceback (most recent call last):
      ...
      ValueError: precision must be one of ('default', 'high', 'highest'); got 'tf32'
    """
    if x not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {x!r}")


def check_ndim(name: str, x: ArrayLike, ndim: int) -> None:
    if np.ndim(x) != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s); got shape {shape_of(x)}")


def check_shape(name: str, x: ArrayLike, expected: Sequence[int | None]) -> None:
    """Raise unless ``x.shape`` equals ``expected`` (``None`` matches any size)."""
    got = shape_of(x)
    ok = len(got) == len(expected) and all(
        e is None or e == g for e, g in zip(expected, got, strict=True)
    )
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name} has shape {got} but expected {want}")


def check_same_shape(name_a: str, a: ArrayLike, name_b: str, b: ArrayLike) -> None:
    if shape_of(a) != shape_of(b):
        raise ValueError(
            f"{name_a} has shape {shape_of(a)} but {name_b} has shape {shape_of(b)}; they must "
            "match exactly (gradlab never broadcasts, e.g. (n,) against (n, 1))"
        )


def check_same_dtype(name_a: str, a: ArrayLike, name_b: str, b: ArrayLike) -> None:
    """Raise unless ``a`` and ``b`` share one dtype (no silent promotion, e.g. a float16 ``X``
    against a float32 ``y``, which would change a loop carry's dtype mid-scan)."""
    da, db = jnp.result_type(a), jnp.result_type(b)
    if da != db:
        raise TypeError(
            f"{name_a} has dtype {da} but {name_b} has dtype {db}; they must share one dtype "
            f"(cast one, e.g. {name_b}.astype({name_a}.dtype))"
        )


def check_floating(name: str, x: ArrayLike) -> None:
    if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        raise TypeError(f"{name} must be a floating-point array; got dtype {jnp.result_type(x)}")


def check_integer(name: str, x: ArrayLike) -> None:
    if not jnp.issubdtype(jnp.result_type(x), jnp.integer):
        raise TypeError(f"{name} must be an integer array; got dtype {jnp.result_type(x)}")


# ---- traced value checks ------------------------------------------------------------------------


class InvalidValueError(ValueError):
    """A value check failed on values that were traced (inside ``fit``, a sweep or the checker)."""


@dataclasses.dataclass
class _Collector:
    trace: Any  # the opaque trace state the collector was opened in
    failures: list[tuple[str, jax.Array]]  # (message, traced bool: the check failed)


_COLLECTOR: contextvars.ContextVar[_Collector | None] = contextvars.ContextVar(
    "gradlab_value_checks", default=None
)


def _record(message: str, failed: jax.Array) -> None:
    """Record a traced check's failure flag in the open collector of this trace level, if any."""
    col = _COLLECTOR.get()
    if col is not None and get_opaque_trace_state() == col.trace:
        col.failures.append((message, jnp.asarray(failed, dtype=bool)))


@contextlib.contextmanager
def collect_checks() -> Iterator[list[tuple[str, jax.Array]]]:
    """Collect the traced value checks made at the current trace level inside the block."""
    col = _Collector(get_opaque_trace_state(), [])
    token = _COLLECTOR.set(col)
    try:
        yield col.failures
    finally:
        _COLLECTOR.reset(token)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Validity:
    """The verdict of traced value checks: a pytree of two arrays (``messages`` is static aux
    data), so it crosses ``jit`` and ``vmap``.

    Attributes:
      bad: bool array, some check failed.
      reason: int32 array, the index in ``messages`` of the first failed check, ``-1`` if none.
      messages: the checks' messages, in the order they were made (static).
    """

    bad: jax.Array
    reason: jax.Array
    messages: tuple[str, ...] = dataclasses.field(metadata={"static": True})

    def message(self) -> str | None:
        """The first failed check's message for a concrete, unbatched verdict; None if valid."""
        r = int(self.reason)
        return None if r < 0 else self.messages[r]

    def raise_if_bad(self, where: str = "") -> None:
        """Raise :class:`InvalidValueError` for a concrete verdict (any lane failing)."""
        reasons = np.asarray(self.reason).ravel()
        bad = sorted({int(r) for r in reasons if r >= 0})
        if bad:
            lanes = "" if np.ndim(self.reason) == 0 else f" ({int((reasons >= 0).sum())} lane(s))"
            text = "; ".join(self.messages[r] for r in bad)
            raise InvalidValueError(f"{where}{text}{lanes}")

    def checkify(self) -> None:
        """Emit the verdict as ``checkify.check`` calls (inside ``checkify.checkify``)."""
        for i, msg in enumerate(self.messages):
            _checkify.check(self.reason != i, msg)


def first_failure(failures: Sequence[tuple[str, jax.Array]]) -> Validity:
    """Fold collected ``(message, failed)`` flags into a :class:`Validity` (first failure wins)."""
    messages = tuple(m for m, _ in failures)
    reason = jnp.asarray(-1, jnp.int32)
    for i in reversed(range(len(failures))):
        reason = jnp.where(failures[i][1], jnp.int32(i), reason)
    return Validity(reason >= 0, reason, messages)


def validity(fn: Callable[..., Any], *args: Any) -> Validity:
    """The value checks ``fn(*args)`` makes, as a traced :class:`Validity` (``fn``'s output is
    discarded, so under ``jit`` XLA keeps only the checks' arithmetic).

    Call it inside ``jit``/``vmap`` with the arguments of the current trace; on concrete
    arguments the checks raise at once, as they always do.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from gradlab.derivations.softmax_nll import softmax_nll
      >>> f = jax.jit(lambda x: validity(softmax_nll, {"theta": jnp.zeros(3)}, x))
      >>> f(jnp.array([0, 2])).message() is None, f(jnp.array([0, 3])).message()
      (True, 'x must lie in the support [0, 2]')
    """
    with collect_checks() as failures:
        fn(*args)
    return first_failure(failures)


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def check_finite(name: str, x: ArrayLike) -> None:
    """Raise if a concrete ``x`` holds NaN or inf, naming the first offending index."""
    if jnp.result_type(x).kind not in "fc":
        return
    if not is_concrete(x):
        _record(f"{name} must be finite", ~jnp.all(jnp.isfinite(x)))
        return
    a = np.asarray(x)
    bad = ~np.isfinite(a)
    if bad.any():
        idx = _first_bad(bad)
        raise ValueError(
            f"{name} must be finite; it holds {int(bad.sum())} non-finite value(s), "
            f"first {a[idx]} at index {idx}"
        )


def check_positive(name: str, x: ArrayLike) -> None:
    """Raise if a concrete ``x`` has an entry <= 0."""
    if not is_concrete(x):
        _record(f"{name} must be > 0 everywhere", ~jnp.all(jnp.asarray(x) > 0))
        return
    a = np.asarray(x)
    bad = ~(a > 0)
    if bad.any():
        idx = _first_bad(bad)
        raise ValueError(f"{name} must be > 0 everywhere; got {a[idx]} at index {idx}")


def check_nonnegative(name: str, x: ArrayLike) -> None:
    """Raise if a concrete ``x`` has an entry < 0 (or NaN)."""
    if not is_concrete(x):
        _record(f"{name} must be >= 0 everywhere", ~jnp.all(jnp.asarray(x) >= 0))
        return
    a = np.asarray(x)
    bad = ~(a >= 0)
    if bad.any():
        idx = _first_bad(bad)
        raise ValueError(f"{name} must be >= 0 everywhere; got {a[idx]} at index {idx}")


def check_at_least(name: str, x: ArrayLike, low: float) -> None:
    """Raise if a concrete ``x`` has an entry below ``low``."""
    if not is_concrete(x):
        _record(f"{name} must be >= {low}", ~jnp.all(jnp.asarray(x) >= low))
        return
    a = np.asarray(x)
    bad = ~(a >= low)
    if bad.any():
        idx = _first_bad(bad)
        raise ValueError(f"{name} must be >= {low}; got {a[idx]} at index {idx}")


def check_simplex(name: str, x: ArrayLike, *, axis: int = -1, atol: float | None = None) -> None:
    """Raise if a concrete ``x`` is not on the probability simplex along ``axis``."""
    if atol is None:
        eps = float(jnp.finfo(jnp.result_type(x)).eps)
        atol = 1e3 * eps * max(1, np.shape(x)[axis])
    if not is_concrete(x):
        check_nonnegative(name, x)
        off = jnp.abs(jnp.sum(x, axis=axis) - 1.0) > atol
        _record(f"{name} must sum to 1 along axis {axis} (a point on the simplex)", jnp.any(off))
        return
    a = np.asarray(x)
    check_nonnegative(name, a)
    total = a.sum(axis=axis)
    off = np.abs(total - 1.0) > atol
    if np.any(off):
        raise ValueError(
            f"{name} must sum to 1 along axis {axis} (a point on the simplex); "
            f"got sum(s) {np.asarray(total)[off].ravel()[:4].tolist()}"
        )


def check_in_range(name: str, x: ArrayLike, low: int, high: int | jax.Array) -> None:
    """Raise if a concrete integer ``x`` has entries outside ``[low, high)`` (``high`` may be a
    traced integer scalar, e.g. a vmapped support size ``d``)."""
    if not (is_concrete(x) and is_concrete(high)):
        wide = jax.dtypes.canonicalize_dtype(jnp.int64)  # uint8 data against an int32 d
        xw, hw = jnp.asarray(x).astype(wide), jnp.asarray(high).astype(wide)
        top = f"{high - 1}" if is_concrete(high) else "d-1"
        failed = jnp.any((xw < low) | (xw >= hw))
        _record(f"{name} must lie in the support [{low}, {top}]", failed)
        return
    high = int(high)
    a = np.asarray(x)
    bad = (a < low) | (a >= high)
    if bad.any():
        idx = _first_bad(bad)
        raise ValueError(
            f"{name} must lie in the support [{low}, {high - 1}]; got {a[idx]} at index {idx}"
        )


def check_scalar(name: str, x: ArrayLike) -> None:
    """Raise unless ``x`` is a floating-point scalar (shape ``()``), e.g. a penalty weight."""
    if np.ndim(x) != 0:
        raise ValueError(f"{name} must be a scalar (shape ()); got shape {shape_of(x)}")
    check_floating(name, x)


def check_scalar_output(call: str, out: Any) -> None:
    """Raise unless ``out`` (a value or a ``jax.ShapeDtypeStruct`` from ``jax.eval_shape``) is
    a floating scalar; ``call`` names what produced it, e.g. ``"loss(params0, *data)"``."""
    shape = getattr(out, "shape", None)
    if shape != () or not hasattr(out, "dtype"):
        got = f"shape {shape}" if shape is not None else type(out).__name__
        raise ValueError(
            f"{call} must return a scalar (shape ()); got {got}. Reduce it (mean or sum) inside"
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"{call} must return a float; got dtype {out.dtype}")


def check_gradient_tree(call: str, grad: Any, name: str, params: Any) -> None:
    """Raise unless ``grad`` has the pytree structure, leaf shapes and leaf dtypes of
    ``params`` (``grad`` may hold ``jax.ShapeDtypeStruct`` leaves from ``jax.eval_shape``; a
    weakly typed Python float adopts its parameter's dtype and passes).

    Args:
      call: what produced ``grad``, for messages (``"grad(params0, *data)"``).
      grad: the gradient pytree.
      name: the parameters' name in messages (``"params0"``).
      params: the parameter pytree.
    """
    want, got = jax.tree.structure(params), jax.tree.structure(grad)
    if want != got:  # type: ignore[operator]  # jaxlib declares PyTreeDef.__eq__ only
        raise ValueError(f"{call} must return the pytree structure of {name} ({want}); got {got}")
    pairs = zip(jax.tree_util.tree_leaves_with_path(params), jax.tree.leaves(grad), strict=True)
    for (path, p), g in pairs:
        leaf = path_name("", path)
        if shape_of(p) != shape_of(g):
            raise ValueError(
                f"{call} leaf {leaf} has shape {shape_of(g)} but {name} has {shape_of(p)}"
            )
        want_dtype, got_dtype = jnp.result_type(p), jnp.result_type(g)
        weak_float = getattr(g, "weak_type", False) and jnp.issubdtype(got_dtype, jnp.floating)
        if got_dtype != want_dtype and not weak_float:
            raise TypeError(
                f"{call} leaf {leaf} has dtype {got_dtype} but {name}{leaf} has {want_dtype}; a "
                "gradient has its parameter's dtype (an integer gradient would train with a "
                "truncated or zero step)"
            )


def check_keys(name: str, tree: Any, expected: Sequence[str]) -> None:
    """Raise unless ``tree`` is a mapping whose keys are exactly ``expected``."""
    if not hasattr(tree, "keys"):
        raise TypeError(f"{name} must be a dict with keys {sorted(expected)}; got {type(tree)}")
    if set(tree.keys()) != set(expected):
        raise ValueError(f"{name} must have keys {sorted(expected)}; got {sorted(tree.keys())}")


def check_binary(name: str, x: ArrayLike) -> None:
    """Raise if a concrete ``x`` has an entry other than 0 or 1 (labels stored as floats)."""
    if not is_concrete(x):
        _record(f"{name} must hold only 0 and 1", ~jnp.all((x == 0) | (x == 1)))
        return
    a = np.asarray(x)
    bad = (a != 0) & (a != 1)
    if bad.any():
        idx = _first_bad(bad)
        raise ValueError(f"{name} must hold only 0 and 1; got {a[idx]} at index {idx}")
