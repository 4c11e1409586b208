r"""Pytrees as flat real vectors, complex leaves included, with JAX's pairing of cotangents.

A complex leaf :math:`z = x + iy` is two real coordinates per element (its real parts, then its
imaginary parts), so every function the vector checker sees is a map :math:`\mathbb R^n \to
\mathbb R^m` whose Jacobian is real, holomorphic or not.

JAX's convention. ``jax.vjp`` transposes with the bilinear pairing
:math:`\langle a, b\rangle = \mathrm{Re}\sum_k a_k b_k` (no conjugate), so a complex cotangent
:math:`c` acts on a tangent :math:`t` as :math:`\mathrm{Re}(c\,t) = c_x t_x - c_y t_y`: as a real
cotangent it is :math:`(\mathrm{Re}\,c, -\mathrm{Im}\,c)`

.. math::  c \;\leftrightarrow\; (\mathrm{Re}\,c,\; -\mathrm{Im}\,c)                       \tag{1}

For a real loss :math:`L(z)` this makes ``jax.grad(L)(z)`` equal to

.. math::  \nabla L = \frac{\partial L}{\partial x} - i\,\frac{\partial L}{\partial y}
           = 2\,\frac{\partial L}{\partial z}
           = \overline{2\,\partial L / \partial \bar z}                                      \tag{2}

the *conjugate* of the steepest-ascent direction :math:`2\,\partial L/\partial\bar z` (the
conjugate Wirtinger derivative, times 2): ``jax.grad(lambda z: abs(z)**2)(z) == 2 * conj(z)``,
and a descent step is ``z - lr * conj(grad)``. A hand gradient written as
:math:`2\,\partial L/\partial\bar z` (PyTorch's convention) is the conjugate of JAX's: the
checker says so (``_vector_judge.conjugate_pairs``) instead of calling it a plain hand bug.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.check import _tree

PyTree = Any


@dataclasses.dataclass(frozen=True)
class FlatLeaf:
    """One leaf of a flattened pytree: path, shape, dtype and its span of real coordinates."""

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype
    start: int

    @property
    def complex(self) -> bool:
        return bool(jnp.issubdtype(self.dtype, jnp.complexfloating))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def width(self) -> int:
        """Real coordinates: the size, twice for a complex leaf."""
        return self.size * (2 if self.complex else 1)

    @property
    def stop(self) -> int:
        return self.start + self.width

    def element(self, coordinate: int) -> tuple[tuple[int, ...], str]:
        """``(index, part)`` of a coordinate inside this leaf; ``part`` is ``""`` for a real
        leaf, ``"real"`` or ``"imag"`` for a complex one."""
        part = ""
        if self.complex:
            part = "imag" if coordinate >= self.size else "real"
            coordinate %= self.size
        return _tree.index_of(coordinate, self.shape), part


@dataclasses.dataclass(frozen=True)
class Span:
    """Real coordinates ``start:stop`` holding one real leaf, or one part of a complex leaf."""

    path: str
    shape: tuple[int, ...]
    start: int
    stop: int

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)

    def index(self, coordinate: int) -> tuple[int, ...]:
        """The leaf index of coordinate ``start + coordinate``."""
        return _tree.index_of(coordinate, self.shape)


def real_dtype(dtype) -> np.dtype:
    """float32 for complex64, float64 for complex128, the dtype itself when real."""
    return np.dtype(jnp.finfo(dtype).dtype)


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a pytree of inexact arrays maps to one flat real vector, and back.

    ``ravel`` / ``unravel`` map values and tangents; ``ravel_cot`` / ``unravel_cot`` map
    cotangents with eq. (1), so that ``<ravel_cot(c), ravel(t)>`` is JAX's ``Re sum(c t)``.
    """

    treedef: Any
    leaves: tuple[FlatLeaf, ...]
    dtype: np.dtype  # the real dtype of the flat vector

    @property
    def size(self) -> int:
        return self.leaves[-1].stop if self.leaves else 0

    @property
    def any_complex(self) -> bool:
        return any(leaf.complex for leaf in self.leaves)

    def _flat(self, tree, sign: float):
        parts = []
        for leaf, x in zip(self.leaves, self.treedef.flatten_up_to(tree), strict=True):
            x = jnp.ravel(jnp.asarray(x))
            if leaf.complex:
                parts += [jnp.real(x).astype(self.dtype), sign * jnp.imag(x).astype(self.dtype)]
            else:
                parts.append(x.astype(self.dtype))
        return jnp.concatenate(parts) if parts else jnp.zeros(0, self.dtype)

    def _tree(self, vec, sign: float):
        out = []
        for leaf in self.leaves:
            v = vec[leaf.start : leaf.stop]
            if leaf.complex:
                re, im = v[: leaf.size], v[leaf.size :]
                v = jax.lax.complex(re, sign * im)
            out.append(v.astype(leaf.dtype).reshape(leaf.shape))
        return self.treedef.unflatten(out)

    def ravel(self, tree) -> jax.Array:
        return self._flat(tree, 1.0)

    def unravel(self, vec) -> PyTree:
        return self._tree(vec, 1.0)

    def ravel_cot(self, tree) -> jax.Array:
        return self._flat(tree, -1.0)  # (1)

    def unravel_cot(self, vec) -> PyTree:
        return self._tree(vec, -1.0)  # (1)

    def spans(self) -> list[Span]:
        """One :class:`Span` per real leaf, two (``.real``, ``.imag``) per complex leaf."""
        out = []
        for leaf in self.leaves:
            if leaf.complex:
                mid = leaf.start + leaf.size
                out.append(Span(leaf.path + ".real", leaf.shape, leaf.start, mid))
                out.append(Span(leaf.path + ".imag", leaf.shape, mid, leaf.stop))
            else:
                out.append(Span(leaf.path, leaf.shape, leaf.start, leaf.stop))
        return out

    def locate(self, coordinate: int) -> tuple[FlatLeaf, tuple[int, ...], str]:
        """The leaf, index and part of a flat coordinate."""
        for leaf in self.leaves:
            if leaf.start <= coordinate < leaf.stop:
                return (leaf, *leaf.element(coordinate - leaf.start))
        raise IndexError(f"coordinate {coordinate} outside a layout of size {self.size}")


def layout(tree, paths: list[str]) -> Layout:
    """The :class:`Layout` of a pytree of inexact arrays (or shape/dtype structs)."""
    leaves, treedef = jax.tree.flatten(tree)
    out, start = [], 0
    for path, x in zip(paths, leaves, strict=True):
        leaf = FlatLeaf(path, tuple(np.shape(x)), _tree.leaf_dtype(x), start)
        out.append(leaf)
        start = leaf.stop
    reals = [real_dtype(leaf.dtype) for leaf in out]
    dtype = np.dtype(jnp.result_type(*reals)) if reals else np.dtype(jnp.result_type(float))
    return Layout(treedef, tuple(out), dtype)
