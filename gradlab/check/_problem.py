"""The first stage: a validated :class:`Problem` (loss, hand, arguments, parameters, leaves).

Every later stage reads a ``Problem`` and nothing else from the caller. Its ``leaves`` are the
*report* leaves: the pytree leaves of ``args[argnums]`` (paths ``['w']``, ``args[1]``), or named
slices of a flat parameter vector (``names={"coef": slice(0, 5), ...}`` or an ``unravel``
function), each with its offset in the raveled parameters ``x``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab.check import _tree

PyTree = Any
Names = Mapping[str, slice] | Callable[[jax.Array], PyTree] | None


@dataclasses.dataclass(frozen=True)
class ReportLeaf:
    """A named stretch ``x[offset : offset + size]`` of the raveled parameters, shaped ``shape``."""

    path: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def span(self) -> slice:
        return slice(self.offset, self.offset + self.size)


@dataclasses.dataclass(frozen=True)
class Problem:
    """A validated check: ``loss(*args)`` and ``hand(*args)`` w.r.t. ``args[argnums]``.

    Attributes:
      loss: the jax loss, a real scalar.
      hand: the hand gradient (or ``(value, gradient)`` when ``value_and_grad``).
      args: the arguments, as given.
      argnums: an int or a tuple of ints (normalized, non-negative).
      tree_leaves: the parameter pytree's leaves (what a gradient's shapes are checked against).
      leaves: the report leaves (pytree leaves, or named slices of a flat vector).
      dtype: the parameters' common dtype (the dtype checked).
      value_and_grad: ``hand`` returns ``(value, gradient)``.
    """

    loss: Callable[..., jax.Array]
    hand: Callable[..., Any]
    args: tuple
    argnums: int | tuple[int, ...]
    tree_leaves: tuple[_tree.Leaf, ...]
    leaves: tuple[ReportLeaf, ...]
    dtype: np.dtype
    value_and_grad: bool = False

    @property
    def params(self) -> PyTree:
        return _tree.get_params(self.args, self.argnums)

    @property
    def size(self) -> int:
        return sum(leaf.size for leaf in self.tree_leaves)

    def ravel(self) -> tuple[np.ndarray, Callable[[jax.Array], PyTree]]:
        """``(x, unravel)``: the parameters as one vector and the inverse."""
        x, unravel = ravel_pytree(self.params)
        return np.asarray(x), unravel

    def with_params(self, params: PyTree) -> tuple:
        """The arguments with ``args[argnums]`` replaced by ``params``."""
        return _tree.set_params(self.args, self.argnums, params)

    def as_dtype(self, dtype) -> Problem:
        """The same problem with every floating argument cast to ``dtype`` (the float64 copy)."""
        if np.dtype(dtype) == self.dtype:
            return self
        args = _tree.cast_floating(self.args, dtype)
        tree_leaves = tuple(_tree.describe(_tree.get_params(args, self.argnums), self.argnums))
        return dataclasses.replace(self, args=args, tree_leaves=tree_leaves, dtype=np.dtype(dtype))

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """A raveled vector cut into the report leaves (flat pieces)."""
        return [flat[leaf.span] for leaf in self.leaves]


def build(
    loss: Callable,
    hand: Callable,
    args: tuple,
    argnums: Any = 0,
    names: Names = None,
    value_and_grad: bool = False,
) -> Problem:
    """Validate the caller's input into a :class:`Problem`; errors name what is wrong."""
    if not callable(loss):
        raise TypeError(f"loss must be callable; got {type(loss).__name__}")
    if not callable(hand):
        raise TypeError(f"grad must be callable; got {type(hand).__name__}")
    if not args:
        raise ValueError("check_grad needs the loss's arguments after loss and grad; got none")
    argnums = _tree.normalize_argnums(argnums, len(args))
    params = _tree.get_params(args, argnums)
    tree_leaves = tuple(_tree.check_params(params, argnums))
    dtype = common_dtype(tree_leaves)
    leaves = report_leaves(params, argnums, tree_leaves, names)
    return Problem(loss, hand, tuple(args), argnums, tree_leaves, leaves, dtype, value_and_grad)


def common_dtype(leaves) -> np.dtype:
    """The dtype the parameters promote to (bfloat16 and float16 included)."""
    return np.dtype(jnp.result_type(*[leaf.dtype for leaf in leaves]))


def report_leaves(params, argnums, tree_leaves, names: Names) -> tuple[ReportLeaf, ...]:
    """The pytree leaves, or ``names`` over a flat parameter vector."""
    if names is None:
        out, off = [], 0
        for leaf in tree_leaves:
            out.append(ReportLeaf(leaf.path, leaf.shape, off))
            off += leaf.size
        return tuple(out)
    if len(tree_leaves) != 1 or len(tree_leaves[0].shape) != 1:
        shapes = [leaf.shape for leaf in tree_leaves]
        raise ValueError(
            f"names= splits one flat parameter vector; {_tree.arg_name(argnums)} has leaves of "
            f"shapes {shapes}"
        )
    n = tree_leaves[0].size
    if isinstance(names, Mapping):
        return _named_slices(names, n)
    if callable(names):
        return _unraveled(names, n, tree_leaves[0].dtype)
    raise TypeError(
        f"names must be a mapping {{name: slice}} or an unravel function; got "
        f"{type(names).__name__}"
    )


def _named_slices(names: Mapping, n: int) -> tuple[ReportLeaf, ...]:
    spans = []
    for name, s in names.items():
        if not isinstance(name, str) or not isinstance(s, slice) or s.step not in (None, 1):
            raise TypeError(f"names must map str to slice(start, stop); got {name!r}: {s!r}")
        start, stop, _ = s.indices(n)
        spans.append((start, stop, name))
    spans.sort()
    pos = 0
    for start, stop, name in spans:
        if start != pos or stop <= start:
            raise ValueError(
                f"names must cover the {n} parameters exactly once, in contiguous slices; "
                f"{name!r} is [{start}, {stop}) but the next uncovered index is {pos}"
            )
        pos = stop
    if pos != n:
        raise ValueError(f"names cover [0, {pos}) but the parameter vector has {n} elements")
    return tuple(ReportLeaf(name, (stop - start,), start) for start, stop, name in spans)


def _unraveled(unravel: Callable, n: int, dtype) -> tuple[ReportLeaf, ...]:
    """Report leaves from ``unravel(x)``: each leaf must be a contiguous stretch of ``x``."""
    probe = np.arange(n, dtype=np.float64)
    tree = unravel(jnp.asarray(probe, jnp.result_type(float)))
    out = []
    for path, leaf in zip(_tree.leaf_paths(tree, 0), jax.tree.leaves(tree), strict=True):
        idx = np.asarray(leaf, np.float64).ravel()
        start = int(idx[0]) if idx.size else 0
        if not np.array_equal(idx, np.arange(start, start + idx.size)):
            raise ValueError(
                f"names=unravel: leaf {path} of unravel(x) is not a contiguous slice of x "
                "(reshapes of x[start:stop] are supported)"
            )
        out.append(ReportLeaf(path, tuple(np.shape(leaf)), start))
    out.sort(key=lambda leaf: leaf.offset)
    covered = sum(leaf.size for leaf in out)
    gaps = [a.offset + a.size != b.offset for a, b in zip(out[:-1], out[1:], strict=True)]
    if covered != n or any(gaps):
        raise ValueError(
            f"names=unravel must use each of the {n} parameters exactly once; its leaves cover "
            f"{covered}"
        )
    return tuple(out)
