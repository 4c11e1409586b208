r"""The three witnesses of a vector function's derivative: hand rule, autodiff, differences.

A function :math:`f:\mathbb R^n\to\mathbb R^m` (pytrees flattened to real vectors, complex
leaves as two real coordinates, ``_complex`` eq. (1)) has Jacobian :math:`J`. The witnesses are

* the hand rule, one of: a VJP :math:`u \mapsto J^\top u`, a JVP :math:`t \mapsto J t`, a
  Jacobian :math:`J`, or the function's own custom rules through ``jax.vjp``;
* autodiff of a *reference* :math:`g` with :math:`g = f` in value: by default ``f`` with its
  custom rules removed (``_rules.strip``), so JAX differentiates the primal implementation;
* central differences of :math:`f` with Richardson extrapolation, column :math:`j`:

.. math::  R_{:,j} = D_j(\tfrac h2) + \frac{D_j(\tfrac h2) - D_j(h)}{3},\quad
           D_j(h) = \frac{f(x + h e_j) - f(x - h e_j)}{2h},\quad
           \delta_{:,j} = \frac{\lvert D_j(\tfrac h2) - D_j(h)\rvert}{3}
           + \frac{2\varepsilon \max\lvert f\rvert}{h}                                  \tag{1}

(``_witnesses`` eq. (2), one column per input coordinate; one direction :math:`t` instead of
:math:`e_j` in fast mode).

Full mode computes the block :math:`J_{O,I}` for output coordinates :math:`O` and input
coordinates :math:`I` from each witness (rows through VJPs, columns through JVPs, whichever is
fewer), chunked with ``lax.map``. Fast mode draws seeded cotangents :math:`U` (``k`` per output
leaf) and tangents :math:`T` (``k`` per input leaf) and computes

.. math::  U J \text{ (hand VJP, autodiff VJP)}, \quad J T^\top \text{ (hand JVP, autodiff
           JVP, finite differences along } T),                                           \tag{2}

which the judge compares coordinate by coordinate and through
:math:`\langle u, J t\rangle = \langle J^\top u, t\rangle`.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.check import _differences, _tree
from gradlab.check._complex import Layout


class Kind(enum.Enum):
    """What the hand rule is."""

    VJP = "vjp"  # vjp(*args, cotangent) -> cotangent of args[argnums]
    JVP = "jvp"  # jvp(primals, tangents) -> (primal_out, tangent_out), custom_jvp style
    JACOBIAN = "jacobian"  # jac(*args) -> the pytree jax.jacobian(f, argnums) returns
    OWN = "own rules"  # f's own custom_jvp/custom_vjp rules, through jax.vjp(f)


@dataclasses.dataclass(frozen=True)
class Spec:
    """Everything static about one check (hashable: the jitted programs are cached on it)."""

    f: Callable
    reference: Callable
    hand: Callable | None
    kind: Kind
    argnums: Any
    inputs: Layout
    outputs: Layout
    chunk: int


# ---- the functions in flat real coordinates ----------------------------------------------------


def _at(spec: Spec, args, x):
    return _tree.set_params(args, spec.argnums, spec.inputs.unravel(x))


def flat_f(spec: Spec, args, x):
    """:math:`f` on flat real coordinates."""
    return spec.outputs.ravel(spec.f(*_at(spec, args, x)))


def flat_reference(spec: Spec, args, x):
    return spec.outputs.ravel(spec.reference(*_at(spec, args, x)))


def _tangents(spec: Spec, args, t):
    """The tangent tuple a custom_jvp-style rule receives: ``t`` at ``argnums``, zeros elsewhere."""
    zeros = [jax.tree.map(_zero_tangent, a) for a in args]
    return _tree.set_params(zeros, spec.argnums, spec.inputs.unravel(t))


def _zero_tangent(a):
    a = jnp.asarray(a)
    if jnp.issubdtype(a.dtype, jnp.inexact):
        return jnp.zeros_like(a)
    return np.zeros(a.shape, jax.dtypes.float0)


def hand_rows(spec: Spec, args, U):
    """``U J`` from the hand rule (VJP, own rules or Jacobian); ``U`` is ``(k, m)``."""
    x0 = spec.inputs.ravel(_tree.get_params(args, spec.argnums))
    if spec.kind is Kind.OWN:
        _, pull = jax.vjp(lambda x: flat_f(spec, args, x), x0)
        return _map(lambda u: pull(u)[0], U, spec.chunk)
    if spec.kind is Kind.JACOBIAN:
        jac = hand_jacobian(spec, args)
        return jac[U.idx] if isinstance(U, Basis) else U @ jac

    def one(u):
        return spec.inputs.ravel_cot(spec.hand(*args, spec.outputs.unravel_cot(u)))

    return _map(one, U, spec.chunk)


def hand_cols(spec: Spec, args, T):
    """``(J T^T)^T`` from a JVP rule, and the rule's primal output (flat) at ``args``."""

    def one(t):
        out, tout = spec.hand(tuple(args), tuple(_tangents(spec, args, t)))
        return spec.outputs.ravel(tout), spec.outputs.ravel(out)

    cols, outs = _map(one, T, spec.chunk)
    return cols, outs[0]


def hand_jacobian(spec: Spec, args):
    """The dense ``(m, n)`` matrix of a hand Jacobian pytree (out-leaf major, as jax.jacobian)."""
    if spec.hand is None:
        raise TypeError("hand_jacobian needs the hand Jacobian function (spec.hand); got None")
    jac = jax.tree.leaves(spec.hand(*args))
    rows, pos = [], 0
    for o in spec.outputs.leaves:
        blocks = []
        for i in spec.inputs.leaves:
            blocks.append(jnp.reshape(jac[pos], (o.size, i.size)).astype(spec.outputs.dtype))
            pos += 1
        rows.append(jnp.concatenate(blocks, axis=1))
    return jnp.concatenate(rows, axis=0)


def auto_rows(spec: Spec, args, U):
    x0 = spec.inputs.ravel(_tree.get_params(args, spec.argnums))
    _, pull = jax.vjp(lambda x: flat_reference(spec, args, x), x0)
    return _map(lambda u: pull(u)[0], U, spec.chunk)


def auto_cols(spec: Spec, args, T):
    x0 = spec.inputs.ravel(_tree.get_params(args, spec.argnums))

    def one(t):
        return jax.jvp(lambda x: flat_reference(spec, args, x), (x0,), (t,))[1]

    return _map(one, T, spec.chunk)


def fd_along(spec: Spec, args, T, h):
    """``f(x + s h_j t_j)`` for ``s`` in ``(1, -1, 1/2, -1/2)``: ``(k, 4, m)``, eq. (1).

    ``T`` is ``(k, n)`` directions, or an int vector of coordinates (unit directions ``e_j``).
    """
    x0 = spec.inputs.ravel(_tree.get_params(args, spec.argnums))
    signs = jnp.asarray([1.0, -1.0, 0.5, -0.5], x0.dtype)
    unit = jnp.issubdtype(T.dtype, jnp.integer)

    def one(th):
        t, hj = th
        step = (lambda d: x0.at[t].add(d)) if unit else (lambda d: x0 + d * t)
        return jax.vmap(lambda s: flat_f(spec, args, step(s * hj)))(signs)

    return _map(one, (T, h), spec.chunk)


class Basis(NamedTuple):
    """Unit vectors ``e_i`` for ``i`` in ``idx`` of length ``size``, built one chunk at a time
    (never the dense ``(len(idx), size)`` matrix)."""

    idx: jax.Array
    size: int
    dtype: Any


def _map(fn, xs, chunk: int):
    """``vmap(fn)`` over the rows of ``xs`` (or of a :class:`Basis`), ``chunk`` rows at a time."""
    if isinstance(xs, Basis):
        basis = xs
        xs = basis.idx

        def fn(i, _fn=fn):
            return _fn(jax.nn.one_hot(i, basis.size, dtype=basis.dtype))

    n = jax.tree.leaves(xs)[0].shape[0]
    if n <= chunk:
        return jax.vmap(fn)(xs)  # one copy of the body to compile, not a scan and a remainder
    return jax.lax.map(fn, xs, batch_size=chunk)


# ---- the programs (one jit each, cached on the Spec) ---------------------------------------------


class Block(NamedTuple):
    """Full mode: ``J[out_idx][:, in_idx]`` from the hand rule and autodiff, and ``f``, ``g``."""

    hand: jax.Array
    auto: jax.Array
    f0: jax.Array
    g0: jax.Array
    hand_primal: jax.Array  # the JVP rule's primal output (f0 for the other kinds)


def _basis(idx, size, dtype) -> Basis:
    return Basis(idx, size, dtype)


def block(spec: Spec, args, out_idx, in_idx) -> Block:
    """Traceable: the Jacobian block of rows ``out_idx`` and columns ``in_idx``."""
    dt = spec.outputs.dtype
    m, n = spec.outputs.size, spec.inputs.size
    x0 = spec.inputs.ravel(_tree.get_params(args, spec.argnums))
    f0 = flat_f(spec, args, x0)
    primal = f0
    if spec.kind is Kind.JVP:
        cols, primal = hand_cols(spec, args, _basis(in_idx, n, spec.inputs.dtype))
        hand = cols.T[out_idx]
    else:
        hand = hand_rows(spec, args, _basis(out_idx, m, dt))[:, in_idx]
    if out_idx.shape[0] <= in_idx.shape[0]:
        auto = auto_rows(spec, args, _basis(out_idx, m, dt))[:, in_idx]
    else:
        auto = auto_cols(spec, args, _basis(in_idx, n, spec.inputs.dtype)).T[out_idx]
    return Block(hand, auto, f0, flat_reference(spec, args, x0), primal)


class Probes(NamedTuple):
    """Fast mode, eq. (2): hand and autodiff along the cotangents ``U`` and tangents ``T``."""

    hand_rows: jax.Array | None  # U J from a VJP / Jacobian / own rules
    hand_cols: jax.Array | None  # (J T^T)^T from a JVP rule
    auto_rows: jax.Array
    auto_cols: jax.Array
    f0: jax.Array
    g0: jax.Array
    hand_primal: jax.Array


def probes(spec: Spec, args, U, T) -> Probes:
    x0 = spec.inputs.ravel(_tree.get_params(args, spec.argnums))
    f0 = flat_f(spec, args, x0)
    rows = cols = None
    primal = f0
    if spec.kind is Kind.JVP:
        cols, primal = hand_cols(spec, args, T)
    else:
        rows = hand_rows(spec, args, U)
    auto_r, auto_c = auto_rows(spec, args, U), auto_cols(spec, args, T)
    return Probes(rows, cols, auto_r, auto_c, f0, flat_reference(spec, args, x0), primal)


def _probes_and_fd(spec: Spec, args, U, T, h):
    return probes(spec, args, U, T), fd_along(spec, args, T, h)


@functools.lru_cache(maxsize=256)
def probe_fd_program(spec: Spec) -> Callable:
    """Fast mode in one program when the user's precision is float64 already."""
    return jax.jit(functools.partial(_probes_and_fd, spec))


@functools.lru_cache(maxsize=256)
def block_program(spec: Spec) -> Callable:
    return jax.jit(functools.partial(block, spec))


@functools.lru_cache(maxsize=256)
def probe_program(spec: Spec) -> Callable:
    return jax.jit(functools.partial(probes, spec))


def _fd_and_value(spec: Spec, args, T, h):
    x0 = spec.inputs.ravel(_tree.get_params(args, spec.argnums))
    return fd_along(spec, args, T, h), flat_f(spec, args, x0)


@functools.lru_cache(maxsize=256)
def fd_program(spec: Spec) -> Callable:
    return jax.jit(functools.partial(_fd_and_value, spec))


# ---- finite differences as numbers ---------------------------------------------------------------


class Differences(NamedTuple):
    """Richardson columns ``R`` (``(m, k)``: one column per direction) and their error, eq. (1)."""

    richardson: np.ndarray
    error: np.ndarray


def differences(spec: Spec, wide_args, T: np.ndarray, h: np.ndarray) -> Differences:
    """Eq. (1) along the rows of ``T`` with steps ``h``, in the dtype of ``wide_args``."""
    dtype = spec.inputs.dtype
    integer = np.issubdtype(np.asarray(T).dtype, np.integer)
    rows = jnp.asarray(T) if integer else jnp.asarray(T, dtype)
    vals, f0 = fd_program(spec)(wide_args, rows, jnp.asarray(h, dtype))
    return richardson(vals, f0, h, float(np.finfo(dtype).eps))


def richardson(vals, f0, h, eps: float) -> Differences:
    """Eq. (1) from the values ``(k, 4, m)`` at ``x + s h t`` and ``f(x)``: pure numpy."""
    vals, f0 = np.asarray(vals, np.float64), np.asarray(f0, np.float64)
    fp, fm, fp2, fm2 = (vals[:, s, :] for s in range(4))
    hh = np.asarray(h, np.float64)[:, None]
    with np.errstate(all="ignore"):
        d1 = (fp - fm) / (2 * hh)
        d2 = (fp2 - fm2) / hh
        r = d2 + (d2 - d1) / 3.0  # (1)
        big = np.maximum(np.abs(vals).max(axis=1), np.abs(f0)[None, :])
        err = np.abs(d2 - d1) / 3.0 + 2.0 * eps * big / hh  # (1)
    return Differences(r.T, err.T)


def column_steps(x: np.ndarray, dtype) -> np.ndarray:
    """Per-coordinate power-of-two steps ``h ~ eps^(1/5) max(1, |x|)`` (``_witnesses``)."""
    return _differences.steps(np.asarray(x), dtype)


def direction_step(x: np.ndarray, dtype) -> float:
    """One step for a unit-scale direction: ``eps^(1/5) max(1, max |x|)``."""
    scale = max(1.0, float(np.max(np.abs(x)))) if np.size(x) else 1.0
    return float(_differences.steps(np.asarray([scale]), dtype)[0])
