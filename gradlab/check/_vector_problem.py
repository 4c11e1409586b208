"""The validated input of a vector check: shapes and trees checked with ``jax.eval_shape``, so a
malformed function or rule fails with a message naming what came, before anything compiles."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.check import _complex, _tree
from gradlab.check._vector import Kind, Spec

_ARRAYISH = (jax.Array, np.ndarray, np.generic, float, int, complex)


def output_paths(out) -> list[str]:
    flat, _ = jax.tree_util.tree_flatten_with_path(out)
    return ["out" + jax.tree_util.keystr(p) for p, _ in flat]


def _checked_f(f: Callable) -> Callable:
    def traced(*args):
        out = f(*args)
        flat, _ = jax.tree_util.tree_flatten_with_path(out)
        for path, x in flat:
            if not isinstance(x, _ARRAYISH) and not hasattr(x, "aval"):
                raise TypeError(
                    f"f(*args) must return a pytree of arrays; got {type(x).__name__} at "
                    f"out{jax.tree_util.keystr(path)}"
                )
        return jax.tree.map(jnp.asarray, out)

    return traced


def output_struct(f: Callable, args: tuple):
    """``jax.eval_shape`` of ``f``, every output leaf an inexact array (errors otherwise)."""
    out = jax.eval_shape(_checked_f(f), *args)
    paths = output_paths(out)
    if not paths:
        raise ValueError("f(*args) returned no arrays: there is no derivative to check")
    for path, leaf in zip(paths, jax.tree.leaves(out), strict=True):
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise TypeError(
                f"f(*args) returns {path} with dtype {leaf.dtype}: an integer or boolean output "
                "has no derivative; return it as a float, or leave it out of the checked function"
            )
    return out


def argument_names(f: Callable, nargs: int) -> list[str] | None:
    """``f``'s positional parameter names (for ``args[i]`` in reports), when it has them all."""
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in params if p.kind in kinds]
    return names[:nargs] if len(names) >= nargs else None


def _rename(path: str, names: list[str] | None) -> str:
    if names is None or not path.startswith("args["):
        return path
    i = int(path[5 : path.index("]")])
    return names[i] + path[path.index("]") + 1 :]


def input_layout(args: tuple, argnums, names: list[str] | None = None) -> _complex.Layout:
    params = _tree.get_params(args, argnums)
    leaves = _tree.describe(params, argnums)
    if not leaves:
        raise ValueError(f"{_tree.arg_name(argnums)} has no array leaves to differentiate")
    for leaf in leaves:
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise TypeError(
                f"{_tree.arg_name(argnums)}{leaf.path} must be a floating or complex array to be "
                f"differentiated; got dtype {leaf.dtype}"
            )
    paths = [
        _rename(p if p.startswith("args[") else _tree.arg_name(argnums) + p, names)
        for p in _tree.leaf_paths(params, argnums)
    ]
    return _complex.layout(params, paths)


def _same_tree(what: str, got, want, want_name: str) -> None:
    """``got`` (shape structs) must have ``want``'s structure, shapes and real/complex kind."""
    have_def, want_def = jax.tree.structure(got), jax.tree.structure(want)
    if have_def != want_def:  # type: ignore[operator]  # jaxlib declares PyTreeDef.__eq__ only
        raise ValueError(
            f"{what} returned a pytree with structure {have_def}, but {want_name} has structure "
            f"{want_def}; they must match"
        )
    flat, _ = jax.tree_util.tree_flatten_with_path(want)
    for (path, w), g in zip(flat, jax.tree.leaves(got), strict=True):
        where = want_name + jax.tree_util.keystr(path)
        if tuple(np.shape(g)) != tuple(np.shape(w)):
            raise ValueError(
                f"{what} returned shape {tuple(np.shape(g))} for {where}, which has shape "
                f"{tuple(np.shape(w))}; gradlab never reshapes or broadcasts"
            )
        gc = jnp.issubdtype(g.dtype, jnp.complexfloating)
        if gc != jnp.issubdtype(w.dtype, jnp.complexfloating):
            raise TypeError(
                f"{what} returned dtype {g.dtype} for {where}, which has dtype {w.dtype}; a "
                "complex value needs a complex derivative and a real one a real derivative"
            )


def _struct(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), _tree.leaf_dtype(x)), tree)


def validate_rule(kind: Kind, hand, args: tuple, argnums, out) -> None:
    """Check the rule's output tree against the function's, with ``jax.eval_shape``."""
    params = _struct(_tree.get_params(args, argnums))
    name = _tree.arg_name(argnums)
    if kind is Kind.VJP:
        got = jax.eval_shape(hand, *args, out)
        _same_tree("vjp(*args, cotangent)", got, params, name)
    elif kind is Kind.JVP:
        zeros = [jax.tree.map(_tangent_struct, _struct(a)) for a in args]
        tangents = _tree.set_params(zeros, argnums, params)
        got = jax.eval_shape(hand, tuple(args), tuple(tangents))
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            raise TypeError(
                "jvp(primals, tangents) must return a pair (primal_out, tangent_out) as a "
                f"custom_jvp rule does; got {type(got).__name__}"
                + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else "")
            )
        _same_tree("jvp(...)[0] (the primal output)", got[0], out, "out")
        _same_tree("jvp(...)[1] (the tangent output)", got[1], out, "out")
    elif kind is Kind.JACOBIAN:
        got = jax.eval_shape(hand, *args)
        want = jax.tree.map(
            lambda o: jax.tree.map(
                lambda p: jax.ShapeDtypeStruct((*o.shape, *p.shape), o.dtype), params
            ),
            out,
        )
        _same_tree("jac(*args)", got, want, "the Jacobian (as jax.jacobian(f, argnums) has it)")


def _tangent_struct(s):
    if jnp.issubdtype(s.dtype, jnp.inexact):
        return s
    return jax.ShapeDtypeStruct(s.shape, jax.dtypes.float0)


def check_cotangents(cotangents, out, name: str = "") -> None:
    """A user cotangent must have ``f``'s output tree and shapes (``out``: shape structs)."""
    _same_tree(f"cotangents{name and ' ' + name}", _struct(cotangents), out, "out (f's output)")


def spec(
    f: Callable,
    hand: Callable | None,
    kind: Kind,
    args: tuple,
    argnums,
    reference: Callable,
    budget_bytes: int,
) -> Spec:
    """Validate everything (the inputs before ``f`` is traced) and return the
    :class:`~gradlab.check._vector.Spec` of the check, its chunk from :func:`chunk_for`."""
    if not callable(f):
        raise TypeError(f"f must be callable; got {type(f).__name__}")
    if kind is not Kind.OWN and not callable(hand):
        raise TypeError(f"the hand {kind.value} must be callable; got {type(hand).__name__}")
    if not args:
        raise ValueError("the check needs f's arguments after f and the rule; got none")
    argnums = _tree.normalize_argnums(argnums, len(args))
    inputs = input_layout(args, argnums, argument_names(f, len(args)))
    out = output_struct(f, args)
    m = sum(int(np.prod(o.shape, dtype=np.int64)) for o in jax.tree.leaves(out))
    chunk = chunk_for(args, 2 * m, budget_bytes)
    outputs = _complex.layout(out, output_paths(out))
    if kind is Kind.JACOBIAN and (inputs.any_complex or outputs.any_complex):
        raise TypeError(
            "check_jacobian takes real inputs and outputs (a complex Jacobian of a "
            "non-holomorphic function is not one matrix); use check_jvp or check_vjp"
        )
    if kind is not Kind.OWN:
        validate_rule(kind, hand, args, argnums, out)
    return Spec(f, reference, hand, kind, argnums, inputs, outputs, chunk)


def chunk_for(args: tuple, n_out: int, budget_bytes: int) -> int:
    """Rows per ``lax.map`` batch: ``budget / (8 x (bytes of the arguments + of one output))``."""
    nbytes = sum(int(getattr(x, "nbytes", 8)) for x in jax.tree.leaves(args)) + 8 * n_out
    return int(max(1, min(4096, budget_bytes // max(1, 8 * nbytes))))


def wide_args(args: tuple, argnums) -> tuple:
    """The float64 (complex128) copy of the arguments."""

    def cast(x):
        if isinstance(x, (jax.Array, np.ndarray, np.generic, float, complex)):
            dt = jnp.result_type(x)
            if jnp.issubdtype(dt, jnp.complexfloating):
                return jnp.asarray(x, jnp.complex128)
            if jnp.issubdtype(dt, jnp.floating):
                return jnp.asarray(x, jnp.float64)
        return x

    return jax.tree.map(cast, args)
