r"""Random directions over the raveled parameters, generated on device, and the loss along them.

A direction is never a dense ``(directions x leaves) x N`` matrix: entry :math:`g` (the raveled
index, leaf offset plus position in the leaf) of direction :math:`d` is a counter-based hash

.. math::  v_g = u\big(\mathrm{fmix32}(g \oplus \mathrm{fmix32}(s + d))\big) \in (-1, 1)   \tag{1}

of the seed :math:`s` (murmur3's finalizer; :math:`u` maps 24 bits to a uniform), computed
inside the program from the index alone: O(N) memory for any leaf count, one fused elementwise
kernel over the raveled parameters (the block of leaf :math:`j` is entries
:math:`o_j \dots o_j + n_j - 1`), no random-number program and nothing per leaf to compile.
A *test* restricts a direction to the raveled range :math:`[lo, hi)` (group
testing, ``_localize``) or replaces it by the unit vector :math:`e_g` (an elementwise
difference); along it, the four loss values :math:`f(x \pm h v), f(x \pm \tfrac h2 v)` give the
Richardson value :math:`R \approx \langle \nabla f, v\rangle` (``_differences`` eq. (2)), and the
same program returns the projections :math:`\langle g^{ad}, v\rangle`, :math:`\langle g^{hand},
v\rangle` and the magnitude :math:`\sum_g \lvert v_g g^{ad}_g\rvert` of the sum. Tests are mapped
in batches (``lax.map(..., batch_size)``) sized to a memory budget.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab.check import _differences, _tree

_M1, _M2 = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35)


def fmix32(h):
    """murmur3's 32-bit finalizer (a bijection that mixes every bit), elementwise on uint32."""
    h = h ^ (h >> 16)
    h = h * _M1
    h = h ^ (h >> 13)
    h = h * _M2
    return h ^ (h >> 16)


def uniform(index, stream) -> jax.Array:
    """Eq. (1): a uniform value in (-1, 1) per uint32 ``index`` for the uint32 ``stream``."""
    bits = fmix32(index.astype(jnp.uint32) ^ fmix32(stream))
    return ((bits >> 8).astype(jnp.float32) + 0.5) / 2.0**23 - 1.0


class Tests(NamedTuple):
    """A batch of tests: direction ``d`` on ``[lo, hi)``, or the unit vector at ``lo``
    (``unit``), each with its step ``h``."""

    d: jax.Array | np.ndarray
    lo: jax.Array | np.ndarray
    hi: jax.Array | np.ndarray
    unit: jax.Array | np.ndarray
    h: jax.Array | np.ndarray


def direction(n: int, seed, t: Tests, dtype):
    """The raveled direction of test ``t`` (eq. (1), zero outside ``[lo, hi)``), length ``n``."""
    g = jnp.arange(n, dtype=jnp.int64)
    inside = (g >= t.lo) & (g < t.hi)
    value = jnp.where(t.unit, 1.0, uniform(g, seed + t.d.astype(jnp.uint32)))
    return jnp.where(inside, value, 0.0).astype(dtype)


def _along(loss: Callable, argnums, args, seed, hand, auto, t: Tests):
    x, unravel = ravel_pytree(_tree.get_params(args, argnums))
    v = direction(x.size, seed, t, x.dtype)

    def f_at(s):
        return loss(*_tree.set_params(args, argnums, unravel(x + s * v)))

    steps = jnp.stack([t.h, -t.h, 0.5 * t.h, -0.5 * t.h]).astype(x.dtype)
    values = jax.vmap(f_at)(steps)  # one copy of the loss in the program, four lanes
    mag = jnp.sum(jnp.abs(v * auto))
    return values, jnp.vdot(v, auto), jnp.vdot(v, hand), mag


@functools.lru_cache(maxsize=64)
def program(loss: Callable, argnums, batch: int) -> Callable:
    """Jitted: ``(args, seed, raveled hand, raveled autodiff, Tests) -> (values (T, 4),
    <autodiff, v> (T,), <hand, v> (T,), magnitude (T,))``, ``batch`` tests alive at once."""

    def run(args, seed, hand, auto, tests: Tests):
        one = lambda t: _along(loss, argnums, args, seed, hand, auto, t)  # noqa: E731
        return jax.lax.map(one, tests, batch_size=batch)

    return jax.jit(run)


class Along(NamedTuple):
    """Per test: the Richardson value ``r`` and its error ``err``, the projections of autodiff
    and hand, and the magnitude of the projection's terms."""

    r: np.ndarray
    err: np.ndarray
    proj_auto: np.ndarray
    proj_hand: np.ndarray
    magnitude: np.ndarray
    values: np.ndarray
    h: np.ndarray


def evaluate(run: Callable, args, seed, hand, auto, tests: Tests, f0: float, eps: float) -> Along:
    """Run the tests (padded to a power of two: few compiled shapes) and extrapolate."""
    n = int(tests.d.shape[0])
    size = 1 << max(0, (n - 1).bit_length())
    padded = Tests(*(np.concatenate([np.asarray(a), np.repeat(np.asarray(a)[:1], size - n)])
                     for a in tests))  # fmt: skip
    values, pa, ph, mag = (
        np.asarray(x, np.float64)[:n] for x in run(args, seed, hand, auto, padded)
    )
    h = np.asarray(tests.h, np.float64)
    d1, d2 = _differences.central(values, h)
    big = np.maximum(np.abs(values).max(axis=1, initial=0.0), abs(f0))
    r, err = _differences.richardson(d1, d2, big, eps, h)
    return Along(r, err, pa, ph, mag, values, h)


def disagrees(r, err, proj, magnitude, eps: float) -> np.ndarray:
    """``_compare`` eq. (3) along a direction: the projection misses the Richardson value by
    more than its error bar plus :math:`10^{-2}\\sqrt\\varepsilon` of the terms summed."""
    with np.errstate(all="ignore"):
        tol = 8.0 * err + 1e-2 * np.sqrt(eps) * (np.abs(proj) + magnitude)
        return ~(np.abs(r - proj) <= tol)


def batch_size(params, budget: int) -> int:
    """Tests alive at once: the budget over ~8 parameter-sized buffers per test."""
    nbytes = sum(int(np.prod(np.shape(x), dtype=np.int64)) * 8 for x in jax.tree.leaves(params))
    return int(max(1, min(64, budget // max(1, 8 * nbytes))))
