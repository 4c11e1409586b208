r"""The three witnesses: the hand gradient, ``jax.grad``, and central finite differences.

Hand. ``grad(*args)`` is traced with ``jax.jit`` when jax can trace it; when tracing raises (a
numpy gradient calls ``np.asarray`` on a tracer, reads ``.shape`` of an attribute, ...) it is
called eagerly on host (numpy) copies of the arguments, and the report says so.

Autodiff. ``jax.value_and_grad(loss, argnums)`` under ``jax.jit``.

Finite differences. For element :math:`i` of a leaf, with a power-of-two step
:math:`h_i \approx \varepsilon^{1/5}\max(1, |x_i|)` (:math:`\varepsilon` the machine epsilon of the
dtype the differences are taken in, float64 whenever x64 is on), four loss values
:math:`f(x \pm h e_i)`, :math:`f(x \pm \tfrac h2 e_i)` give the central differences

.. math::  D(h) = \frac{f(x+he_i) - f(x-he_i)}{2h} = \partial_i f + \tfrac{h^2}{6}\partial_i^3 f
           + O(h^4)                                                                     \tag{1}

and the Richardson extrapolation with its error estimate

.. math::  R = D(\tfrac h2) + \frac{D(\tfrac h2) - D(h)}{3} = \partial_i f + O(h^4), \qquad
           \delta = \frac{\lvert D(\tfrac h2) - D(h)\rvert}{3}
           + \frac{2\varepsilon \max\lvert f\rvert}{h}                                  \tag{2}

(truncation plus rounding of the loss values). :math:`h \propto \varepsilon^{1/5}` balances the
:math:`O(h^4)` truncation of :math:`R` against the :math:`\varepsilon/h` rounding. The same four
values give the one-sided slopes the kink detector uses (``_kinks.py``). The four evaluations are
``vmap``-ed and the elements are mapped in chunks (``lax.map(..., batch_size=chunk)``) inside one
``jit``, so memory stays bounded by ``chunk`` perturbed copies.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab.check import _tree

FD_STEP_POWER = 1.0 / 5.0  # h ~ eps^(1/5), see (2)


# ---- autodiff ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _value_and_grad(loss: Callable, argnums) -> Callable:
    return jax.jit(jax.value_and_grad(loss, argnums))


def check_scalar_loss(loss: Callable, args: tuple, name: str = "loss") -> None:
    """Raise a clear error unless ``name(*args)`` is a real scalar."""
    out = jax.eval_shape(loss, *args)
    shape = getattr(out, "shape", None)
    if shape != ():
        raise ValueError(
            f"{name}(*args) must return a scalar (shape ()); got "
            f"{'shape ' + str(shape) if shape is not None else type(out).__name__}"
            + (" -- reduce it (sum or mean) or index the single element" if shape else "")
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"{name}(*args) must return a floating scalar; got dtype {out.dtype}")


def autodiff(loss: Callable, args: tuple, argnums) -> tuple[float, object]:
    """``(loss value, jax.grad(loss, argnums)(*args))``; a non-scalar loss raises ``ValueError``."""
    try:
        value, grad = _value_and_grad(loss, argnums)(*args)
    except TypeError:
        check_scalar_loss(loss, args)  # raises the clear error when that was the cause
        raise
    if np.shape(value) != ():
        check_scalar_loss(loss, args)
    return value, grad


# ---- hand ---------------------------------------------------------------------------------------

_UNTRACEABLE: dict[int, str] = {}


@functools.lru_cache(maxsize=256)
def _jit(fn: Callable) -> Callable:
    return jax.jit(fn)


@dataclasses.dataclass(frozen=True)
class Hand:
    """The hand gradient's value and how it was obtained."""

    value: object
    traced: bool
    how: str


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:160]


def hand(grad: Callable, args: tuple) -> Hand:
    """Call the hand gradient, traced under ``jit`` when possible, eagerly otherwise."""
    key = id(grad)
    if key not in _UNTRACEABLE:
        try:
            return Hand(_jit(grad)(*args), True, "traced with jax.jit")
        except Exception as err:  # noqa: BLE001 - any tracing failure means: call it eagerly
            _UNTRACEABLE[key] = _first_line(err)
    value = grad(*_tree.to_numpy(args))
    return Hand(
        value, False, f"called eagerly on numpy copies (not traceable: {_UNTRACEABLE[key]})"
    )


def forget(grad: Callable) -> None:
    """Drop the cached 'not traceable' mark of ``grad`` (its id may be reused once it is gone)."""
    _UNTRACEABLE.pop(id(grad), None)


# ---- finite differences -------------------------------------------------------------------------


def fd_dtype(dtype) -> np.dtype:
    """Finite differences run in float64 whenever x64 is enabled, else in the user's dtype."""
    return np.dtype(jnp.float64) if jax.config.jax_enable_x64 else np.dtype(dtype)


def steps(x: np.ndarray, dtype) -> np.ndarray:
    """Power-of-two steps ``h ~ eps^(1/5) max(1, |x|)``, eq. (2): ``x +- h`` rounds little."""
    eps = float(np.finfo(dtype).eps)
    raw = eps**FD_STEP_POWER * np.maximum(1.0, np.abs(x.astype(np.float64)))
    return np.exp2(np.round(np.log2(raw))).astype(dtype)


def fd_values(loss: Callable, argnums, chunk: int, args, h, idx):
    """Traceable: the four loss values of eq. (1)-(2) for the raveled elements ``idx``.

    ``chunk`` elements are ``vmap``-ed at a time, the chunks mapped sequentially (``lax.map``),
    so at most ``4 * chunk`` perturbed copies live at once.
    """
    x, unravel = ravel_pytree(_tree.get_params(args, argnums))

    def f_at(xv):
        return loss(*_tree.set_params(args, argnums, unravel(xv)))

    def four(i):
        hi = h[i]
        s = jnp.stack([hi, -hi, 0.5 * hi, -0.5 * hi])
        return jax.vmap(lambda d: f_at(x.at[i].add(d)))(s)

    n = idx.shape[0]
    if n <= chunk:
        return jax.vmap(four)(idx)
    pad = (-n) % chunk
    blocks = jnp.concatenate([idx, jnp.zeros(pad, idx.dtype)]).reshape(-1, chunk)
    return jax.lax.map(jax.vmap(four), blocks).reshape(-1, 4)[:n]


@functools.lru_cache(maxsize=256)
def _fd_flat(loss: Callable, argnums, chunk: int) -> Callable:
    return jax.jit(functools.partial(fd_values, loss, argnums, chunk))


@functools.lru_cache(maxsize=256)
def _fused(loss: Callable, grad: Callable, argnums, chunk: int) -> Callable:
    """Hand, value, autodiff and the finite differences in one program (one compile, not three)."""

    def run(args, h, idx):
        value, ad = jax.value_and_grad(loss, argnums)(*args)
        return grad(*args), value, ad, fd_values(loss, argnums, chunk, args, h, idx)

    return jax.jit(run)


def fused(loss: Callable, grad: Callable, args: tuple, argnums, budget_bytes: int):
    """``(Hand, value, autodiff, FD)`` from one jitted program, or None when ``grad`` does not
    trace (or anything else fails: the caller then runs the witnesses one by one)."""
    if id(grad) in _UNTRACEABLE:
        return None
    x, _ = ravel_pytree(_tree.get_params(args, argnums))
    x = np.asarray(x)
    dtype = x.dtype
    h = steps(x, dtype)
    idx = np.arange(x.size, dtype=np.int32)
    chunk = chunk_size(args, idx.size, budget_bytes)
    try:
        g, value, ad, vals = _fused(loss, grad, argnums, chunk)(args, jnp.asarray(h), idx)
    except Exception:  # noqa: BLE001 - the one-by-one path raises the precise error
        return None
    fd = FD(
        np.asarray(vals, np.float64),
        h.astype(np.float64),
        float(value),
        float(np.finfo(dtype).eps),
    )
    return Hand(g, True, "traced with jax.jit"), value, ad, fd


def chunk_size(args: tuple, n: int, budget_bytes: int) -> int:
    """Elements per chunk: ``budget / (4 evaluations x bytes of all arguments)``, at least 1."""
    nbytes = sum(np.asarray(x).nbytes if hasattr(x, "nbytes") else 8 for x in jax.tree.leaves(args))
    return int(max(1, min(n, budget_bytes // max(1, 4 * nbytes), 4096)))


@dataclasses.dataclass(frozen=True)
class FD:
    """Four loss values per element (``+h, -h, +h/2, -h/2``), the steps and ``f(x)``."""

    values: np.ndarray  # (size, 4)
    h: np.ndarray  # (size,)
    f0: float
    eps: float

    def slice(self, start: int, stop: int) -> FD:
        """The elements ``start:stop`` (one leaf of the raveled parameters)."""
        return FD(self.values[start:stop], self.h[start:stop], self.f0, self.eps)

    def richardson(self) -> tuple[np.ndarray, np.ndarray]:
        """``(R, delta)`` of eq. (2)."""
        fp, fm, fp2, fm2 = self.values.T
        with np.errstate(all="ignore"):
            d1 = (fp - fm) / (2 * self.h)  # (1) at h
            d2 = (fp2 - fm2) / self.h  # (1) at h/2
            r = d2 + (d2 - d1) / 3.0  # (2)
            big = np.maximum(np.abs(self.values).max(axis=1), abs(self.f0))
            err = np.abs(d2 - d1) / 3.0 + 2.0 * self.eps * big / self.h  # (2)
        return r, err


def fd_all(loss: Callable, args: tuple, argnums, f0: float, budget_bytes: int, idx=None) -> FD:
    """Finite differences of the elements ``idx`` (default: all) of the raveled parameters."""
    x, _ = ravel_pytree(_tree.get_params(args, argnums))
    x = np.asarray(x)
    dtype = x.dtype
    h = steps(x, dtype)
    idx = np.arange(x.size, dtype=np.int32) if idx is None else np.asarray(idx, np.int32)
    chunk = chunk_size(args, idx.size, budget_bytes)
    vals = np.asarray(_fd_flat(loss, argnums, chunk)(args, jnp.asarray(h), idx))
    return FD(
        vals.astype(np.float64), h[idx].astype(np.float64), float(f0), float(np.finfo(dtype).eps)
    )


# ---- directional (fast mode) -----------------------------------------------------------------


def _jvp_values(loss: Callable, argnums, args, V, h):
    """Traceable: per row ``v`` of ``V`` (raveled directions), the JVP of the loss along ``v`` and
    the four loss values ``f(x +- h v)``, ``f(x +- h/2 v)`` of eq. (1)-(2)."""
    x, unravel = ravel_pytree(_tree.get_params(args, argnums))

    def f(xv):
        return loss(*_tree.set_params(args, argnums, unravel(xv)))

    def one(v):
        _, t = jax.jvp(f, (x,), (v,))
        s = jnp.stack([h, -h, 0.5 * h, -0.5 * h])
        return t, jax.vmap(lambda d: f(x + d * v))(s)

    return jax.vmap(one)(V)


@functools.lru_cache(maxsize=256)
def _directional(loss: Callable, argnums) -> Callable:
    return jax.jit(functools.partial(_jvp_values, loss, argnums))


@functools.lru_cache(maxsize=256)
def _fused_fast(loss: Callable, grad: Callable, argnums) -> Callable:
    def run(args, V, h):
        return (grad(*args), *_jvp_values(loss, argnums, args, V, h))

    return jax.jit(run)


def directional(loss: Callable, grad: Callable, args: tuple, argnums, V: np.ndarray):
    """``(Hand or None, jvp (m,), FD)`` along the rows of ``V``; the hand gradient is computed in
    the same program when it traces (None otherwise: the caller calls it eagerly)."""
    x, _ = ravel_pytree(_tree.get_params(args, argnums))
    x = np.asarray(x)
    dtype = x.dtype
    scale = max(1.0, float(np.max(np.abs(x)))) if x.size else 1.0
    h = jnp.asarray(steps(np.asarray([scale]), dtype)[0], dtype)
    Vj = jnp.asarray(V, dtype)
    hand_ = None
    out = None
    if id(grad) not in _UNTRACEABLE:
        try:
            g, jvp, vals = _fused_fast(loss, grad, argnums)(args, Vj, h)
            hand_ = Hand(g, True, "traced with jax.jit")
            out = (jvp, vals)
        except Exception:  # noqa: BLE001 - the one-by-one path raises the precise error
            out = None
    if out is None:
        out = _directional(loss, argnums)(args, Vj, h)
    jvp, vals = out
    m = V.shape[0]
    fd = FD(np.asarray(vals, np.float64), np.full(m, float(h)), 0.0, float(np.finfo(dtype).eps))
    return hand_, np.asarray(jvp, np.float64), fd
