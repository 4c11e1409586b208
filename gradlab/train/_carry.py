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
    """The loop state, unpacked."""

    params: PyTree
    opt_state: PyTree
    loss: jax.Array  # full-data loss at params
    grad: PyTree  # full-data gradient at params (full-batch mode), else None
    step: jax.Array
    stall: jax.Array
    stopped: jax.Array
    diverged: jax.Array
    taken: jax.Array


def all_finite(tree: PyTree) -> jax.Array:
    return functools.reduce(
        jnp.logical_and,
        (jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)),
        jnp.array(True),
    )


class Packing:
    """The carried pytree as one flat buffer per dtype, so that the freeze (3) is one select per
    buffer rather than one per leaf (on XLA:CPU each select is its own kernel launch, and for
    small models those launches are the loop's cost). Packing and unpacking are exact."""

    def __init__(self, tree: PyTree):
        leaves, self.treedef = jax.tree.flatten(tree)
        self.meta = [(tuple(jnp.shape(x)), jnp.result_type(x)) for x in leaves]
        self.dtypes = sorted({dt for _, dt in self.meta}, key=str)

    def pack(self, tree: PyTree) -> tuple[jax.Array, ...]:
        leaves = jax.tree.leaves(tree)
        return tuple(
            jnp.concatenate(
                [jnp.ravel(x) for x, (_, dt) in zip(leaves, self.meta, strict=True) if dt == d]
            )
            for d in self.dtypes
        )

    def unpack(self, buffers: tuple[jax.Array, ...]) -> PyTree:
        offset = dict.fromkeys(self.dtypes, 0)
        leaves = []
        for shape, dt in self.meta:
            size, start = math.prod(shape), offset[dt]
            buf = buffers[self.dtypes.index(dt)]
            leaves.append(buf[start : start + size].reshape(shape))
            offset[dt] = start + size
        return jax.tree.unflatten(self.treedef, leaves)
