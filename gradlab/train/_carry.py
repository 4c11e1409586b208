"""The loop state of :func:`gradlab.fit`: its logical view and its flat, packed form.

On XLA:CPU every ``jnp.where`` of the freeze, eq. (3) of :mod:`gradlab.train.fit`, is its own
kernel launch, and for small models those launches, not the arithmetic, are the loop's cost.
:class:`Packing` carries the parameters, optimizer state and gradient as one flat buffer per
dtype, so the freeze is one select per buffer; packing and unpacking are exact (concatenate,
slice, reshape). The loss is carried apart: packing it with the rest lets XLA fuse its reduction
differently batched and unbatched, which would cost vmapped lanes their bitwise equality with
lone runs.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

PyTree = Any


class Carry(NamedTuple):
    """The loop state, unpacked: what the step function reads and writes by name."""

    params: PyTree
    opt_state: PyTree
    grad: PyTree  # full-data gradient at params (full-batch mode), else None
    loss: jax.Array  # full-data loss at params
    step: jax.Array  # int32, steps run (accepted or not)
    stall: jax.Array  # int32, consecutive accepted steps with a small improvement, eq. (4)
    taken: jax.Array  # int32, accepted steps
    stopped: jax.Array  # bool, met the early-stopping rule
    diverged: jax.Array  # bool, hit eq. (2), or stopped with the loss above its start


class Packed(NamedTuple):
    """The loop state as the scan carries it: flat buffers, the loss apart, and the counters
    (``step, stall, taken, stopped, diverged``, in :data:`COUNTERS` order) as one int32
    vector."""

    buffers: tuple[jax.Array, ...]
    loss: jax.Array
    counters: jax.Array


COUNTERS = ("step", "stall", "taken", "stopped", "diverged")
_FLAGS = ("stopped", "diverged")


def all_finite(tree: PyTree) -> jax.Array:
    """True when every entry of every leaf of ``tree`` is finite (True for no leaves)."""
    return functools.reduce(
        jnp.logical_and,
        (jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)),
        jnp.array(True),
    )


class Packing:
    """The carried pytree as one flat buffer per dtype, so that the freeze (3) is one select per
    buffer rather than one per leaf (on XLA:CPU each select is its own kernel launch, and for
    small models those launches are the loop's cost). Packing and unpacking are exact."""

    def __init__(self, params: PyTree, opt_state: PyTree, grad: PyTree):
        leaves, self.treedef = jax.tree.flatten((params, opt_state, grad))
        self.meta = [(tuple(jnp.shape(x)), jnp.result_type(x)) for x in leaves]
        self.dtypes = sorted({dt for _, dt in self.meta}, key=str)

    def pack(self, c: Carry) -> Packed:
        """``c`` as the scan's carry."""
        leaves = jax.tree.leaves((c.params, c.opt_state, c.grad))
        buffers = tuple(
            jnp.concatenate(
                [jnp.ravel(x) for x, (_, dt) in zip(leaves, self.meta, strict=True) if dt == d]
            )
            for d in self.dtypes
        )
        counters = jnp.stack([jnp.asarray(getattr(c, f)).astype(jnp.int32) for f in COUNTERS])
        return Packed(buffers, c.loss, counters)

    def select(self, accept: jax.Array, new: Packed, old: Packed) -> Packed:
        """Eq. (3) of ``fit``: ``new``'s buffers and loss where ``accept``, else ``old``'s; the
        counters are ``new``'s (they are final). One select per buffer."""
        buffers = tuple(
            jnp.where(accept, a, b) for a, b in zip(new.buffers, old.buffers, strict=True)
        )
        return Packed(buffers, jnp.where(accept, new.loss, old.loss), new.counters)

    def unpack(self, p: Packed) -> Carry:
        """The named view of a scan carry."""
        offset = dict.fromkeys(self.dtypes, 0)
        leaves = []
        for shape, dt in self.meta:
            size, start = math.prod(shape), offset[dt]
            buf = p.buffers[self.dtypes.index(dt)]
            leaves.append(buf[start : start + size].reshape(shape))
            offset[dt] = start + size
        params, opt_state, grad = jax.tree.unflatten(self.treedef, leaves)
        counts = {f: p.counters[i] for i, f in enumerate(COUNTERS)}
        for f in _FLAGS:
            counts[f] = counts[f] != 0
        return Carry(params, opt_state, grad, p.loss, **counts)
