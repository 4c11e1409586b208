r"""Mini-batch index sampling for :func:`gradlab.fit`: pure functions of ``(key, step)``.

Two schemes, both drawing keys with ``fold_in`` so that a run is a pure function of its key and
a vmapped batch of seeds is a batch of independent streams:

* ``"without_replacement"`` (seed 002, ``rng.choice(n, size=b, replace=False)`` per step): at
  step :math:`t` the batch is the first :math:`b` entries of a uniform permutation of
  :math:`\{0, \dots, n-1\}` drawn with ``fold_in(key, t)``; indices within a batch are distinct,
  batches at different steps are independent.

  .. math::  B_t = \pi_t[0:b], \qquad \pi_t = \mathrm{perm}(\mathrm{fold\_in}(k, t))      \tag{1}

* ``"epochs"`` (shuffled epochs): epoch :math:`e = \lfloor t / m \rfloor` with
  :math:`m = \lfloor n / b \rfloor` batches per epoch draws one permutation with
  ``fold_in(key, e)`` and takes its batches in order, so every index is visited exactly once per
  epoch. The last ``n - m b`` indices of each permutation are dropped (a fresh permutation each
  epoch, so no index is dropped systematically).

  .. math::  B_t = \pi_e[jb : (j+1)b], \qquad e = \lfloor t/m \rfloor,\; j = t - em      \tag{2}

The permutation of (2) is recomputed at every step (an ``O(n log n)`` sort); that keeps the loop
a flat ``scan`` over steps whatever ``record_every`` is, at a cost that is small next to a
gradient for the data sizes where mini-batches on one device make sense.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

SAMPLING = ("without_replacement", "epochs")


def without_replacement(key: jax.Array, step: jax.Array, n: int, batch_size: int) -> jax.Array:
    """Eq. (1): ``batch_size`` distinct indices in ``[0, n)`` for step ``step``."""
    k = jax.random.fold_in(key, step)
    return jax.random.choice(k, n, (batch_size,), replace=False)  # (1)


def epochs(key: jax.Array, step: jax.Array, n: int, batch_size: int) -> jax.Array:
    """Eq. (2): batch ``step mod m`` of the permutation of epoch ``step // m``."""
    per_epoch = n // batch_size
    epoch, j = step // per_epoch, step % per_epoch
    perm = jax.random.permutation(jax.random.fold_in(key, epoch), n)  # (2)
    return lax.dynamic_slice(perm, (j * batch_size,), (batch_size,))


def sampler(sampling: str) -> Callable[[jax.Array, jax.Array, int, int], jax.Array]:
    """The index function for ``sampling`` (one of :data:`SAMPLING`)."""
    return {"without_replacement": without_replacement, "epochs": epochs}[sampling]


def take(data: tuple, idx: jax.Array) -> tuple:
    """Rows ``idx`` of every array in ``data`` (leading axis)."""
    return tuple(jnp.take(a, idx, axis=0) for a in data)
