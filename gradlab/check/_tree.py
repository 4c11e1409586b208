"""The parameter pytree the checker differentiates: which arguments, their leaves and their names.

``argnums`` selects the parameters among ``args`` as ``jax.grad`` does: an ``int`` selects one
pytree, a tuple of ints selects a tuple of them. Every leaf gets a printable path (``['w']`` for
``argnums=0``; ``args[1]['w']`` for a tuple ``argnums``) and every element a tuple index.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradlab._validate import path_name

PyTree = Any


def normalize_argnums(argnums, nargs: int) -> tuple[int, ...] | int:
    """Validate ``argnums`` against ``len(args)``; negative positions count from the end."""

    def one(a):
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"argnums must be an int or a tuple of ints; got {a!r}")
        if not -nargs <= a < nargs:
            raise ValueError(
                f"argnums={a} is out of range: the loss was given {nargs} positional "
                f"argument(s), so argnums must lie in [{-nargs}, {nargs - 1}]"
            )
        return int(a) % nargs

    if isinstance(argnums, (tuple, list)):
        if not argnums:
            raise ValueError("argnums must name at least one argument; got an empty tuple")
        out = tuple(one(a) for a in argnums)
        if len(set(out)) != len(out):
            raise ValueError(f"argnums must not repeat an argument; got {tuple(argnums)}")
        return out
    return one(argnums)


def get_params(args: Sequence, argnums) -> PyTree:
    if isinstance(argnums, tuple):
        return tuple(args[i] for i in argnums)
    return args[argnums]


def set_params(args: Sequence, argnums, params) -> tuple:
    out = list(args)
    if isinstance(argnums, tuple):
        for i, p in zip(argnums, params, strict=True):
            out[i] = p
    else:
        out[argnums] = params
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One parameter leaf: its printable path, shape and dtype."""

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def leaf_paths(params, argnums) -> list[str]:
    flat, _ = jax.tree_util.tree_flatten_with_path(params)
    out = []
    for path, _ in flat:
        if isinstance(argnums, tuple):
            pos = path[0].idx  # the position inside the tuple of selected arguments
            out.append(path_name(f"args[{argnums[pos]}]", path[1:]))
        else:
            out.append(path_name("", path) or f"args[{argnums}]")
    return out


def leaf_dtype(x) -> np.dtype:
    """The array's own dtype; ``jnp.result_type`` only for Python scalars (a weakly typed
    float32 array would otherwise read as float64 when x64 is on)."""
    dtype = getattr(x, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.dtype(jnp.result_type(x))


def describe(params, argnums) -> list[Leaf]:
    leaves = jax.tree.leaves(params)
    return [
        Leaf(p, tuple(np.shape(x)), leaf_dtype(x))
        for p, x in zip(leaf_paths(params, argnums), leaves, strict=True)
    ]


def arg_name(argnums) -> str:
    if isinstance(argnums, tuple):
        return "(" + ", ".join(f"args[{i}]" for i in argnums) + ")"
    return f"args[{argnums}]"


def where(path: str, argnums) -> str:
    """A leaf's full name: ``args[0]['w']`` (a path that already names the argument is kept)."""
    return path if path.startswith("args[") else arg_name(argnums) + path


def check_params(params, argnums) -> list[Leaf]:
    """The parameter leaves must be floating arrays (integers have no gradient)."""
    leaves = describe(params, argnums)
    if not leaves:
        raise ValueError(f"{arg_name(argnums)} has no array leaves to differentiate")
    for leaf in leaves:
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise TypeError(
                f"{where(leaf.path, argnums)} must be a floating-point array to be "
                f"differentiated; got dtype {leaf.dtype}"
            )
    return leaves


def check_grad_tree(witness: str, got, params, argnums, leaves: list[Leaf]) -> list[np.ndarray]:
    """Check that a gradient has the parameters' tree and leaf shapes; return its leaves.

    The checker never reshapes: a ``(p, 1)`` gradient for a ``(p,)`` weight is an error, to be
    fixed where the layout is chosen (check in the layout the code uses, or reshape in a wrapper).
    """
    want = jax.tree.structure(params)
    have = jax.tree.structure(got)
    if want != have:  # type: ignore[operator]  # jaxlib declares PyTreeDef.__eq__ only
        raise ValueError(
            f"{witness} returned a pytree with structure {have}, but {arg_name(argnums)} has "
            f"structure {want}; the gradient must have the parameters' structure"
        )
    out = []
    for leaf, g in zip(leaves, jax.tree.leaves(got), strict=True):
        shape = tuple(np.shape(g))
        if shape != leaf.shape:
            hint = ""
            if int(np.prod(shape, dtype=np.int64)) == leaf.size:
                hint = " (same size, another layout: e.g. (p, 1) against (p,))"
            elif len(shape) > len(leaf.shape):
                hint = " (an (n,) - (n, 1) broadcast upstream gives this)"
            raise ValueError(
                f"{witness} returned shape {shape} for {where(leaf.path, argnums)}, which has "
                f"shape {leaf.shape}; "
                f"gradlab never reshapes or broadcasts a gradient{hint}"
            )
        out.append(np.asarray(g))
    return out


def cast_floating(tree, dtype) -> PyTree:
    """A copy of ``tree`` with every floating leaf cast to ``dtype`` (integers untouched)."""

    def cast(x):
        if _is_key(x):
            return x
        if isinstance(x, (jax.Array, np.ndarray, np.generic, float)) and jnp.issubdtype(
            jnp.result_type(x), jnp.floating
        ):
            return jnp.asarray(x, dtype)
        return x

    return jax.tree.map(cast, tree)


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def copies(tree) -> PyTree:
    """Writable numpy copies of every array leaf (what an eagerly called hand gradient gets:
    it may write into them without touching the caller's arrays); PRNG keys pass unchanged."""

    def copy(x):
        if _is_key(x):
            return x
        if isinstance(x, (jax.Array, np.ndarray)):
            return np.array(x, copy=True)
        return x

    return jax.tree.map(copy, tree)


def index_of(flat: int | np.integer, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(flat), shape)) if shape else ()
