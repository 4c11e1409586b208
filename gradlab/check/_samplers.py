r"""Samplers for ``search_grad``: the default one around given arguments, and the checks of any.

Default sampler (``around(args)``), per lane and per floating leaf :math:`x` (parameters and
data alike), with :math:`z` standard normal, :math:`u \sim U(0, 1)` per leaf:

.. math::  x' = \begin{cases}
             x & u < \tfrac18 \text{ (the leaf kept, so bugs needing the others at their
                 values stay reachable)}\\
             x \odot e^{\,\sigma z},\ \sigma = 10^{U(-1,\,1.3)} & x \ge 0 \text{ entrywise
                 (sign kept: a domain } \theta \ge 0 \text{ stays one)}\\
             x + s\,\max(\mathrm{rms}(x), 1)\,z,\ s = 10^{U(-2,\,2)} & \text{otherwise}
           \end{cases}                                                                 \tag{1}

The log-uniform scales reach both tiny entries (:math:`e^{-20\cdot 3}`, the neighbourhood of a
boundary such as :math:`\theta \to 0`) and large ones (a hundred times the input's size: a
branch past a threshold, an overflow past 88 in float32) in a few thousand draws. Integer,
boolean and key leaves are kept as given.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.check import _tree

KEEP_PROBABILITY = 0.125
LOG_SIGMA = (-1.0, 1.3)  # multiplicative spread, log10
LOG_SHIFT = (-2.0, 2.0)  # additive scale, log10


def _is_float(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic, float)) and jnp.issubdtype(
        jnp.result_type(x), jnp.floating
    )


def _perturb(x, z, u_keep, u_scale, nonneg: bool):
    """Eq. (1) for one leaf, from its normals ``z`` and two uniforms."""
    lo, hi = LOG_SIGMA if nonneg else LOG_SHIFT
    scale = 10.0 ** (lo + (hi - lo) * u_scale)
    if nonneg:
        new = x * jnp.exp(scale * z)  # (1)
    else:
        rms = jnp.sqrt(jnp.mean(jnp.square(x))) if x.size else jnp.zeros((), x.dtype)
        new = x + scale * jnp.maximum(rms, 1.0) * z  # (1)
    return jnp.where(u_keep < KEEP_PROBABILITY, x, new)


def around(args: tuple) -> Callable[[jax.Array], tuple]:
    """The default sampler: ``key -> args'`` with every floating leaf perturbed by eq. (1).

    One ``jax.random.normal`` call per draw (each random call costs compile time under
    ``vmap``); the per-leaf uniforms are normals through the normal CDF.

    Args:
      args: the argument tuple to sample around.

    Returns:
      A traceable ``sampler(key)`` returning a tuple with the tree, shapes and dtypes of ``args``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> s = around((jnp.ones(3, jnp.float32), jnp.arange(2, dtype=jnp.int32)))
      >>> [a.dtype.name for a in s(jax.random.key(0))]
      ['float32', 'int32']
    """
    leaves, treedef = jax.tree.flatten(tuple(args))
    floats = [i for i, x in enumerate(leaves) if _is_float(x)]
    fixed = [jnp.asarray(x) if _is_float(x) else x for x in leaves]
    nonneg = {i: bool(np.all(np.asarray(leaves[i]) >= 0)) for i in floats}
    sizes = [int(np.size(leaves[i])) for i in floats]
    starts = np.cumsum([0] + sizes)
    total = int(starts[-1]) + 2 * len(floats)

    def sampler(key):
        z = jax.random.normal(
            key, (max(1, total),), jnp.float64 if jax.config.read("jax_enable_x64") else jnp.float32
        )
        u = jax.scipy.special.ndtr(z[starts[-1] :])
        out = list(fixed)
        for j, i in enumerate(floats):
            x = fixed[i]
            zi = z[starts[j] : starts[j + 1]].reshape(x.shape).astype(x.dtype)
            out[i] = _perturb(x, zi, u[2 * j], u[2 * j + 1].astype(x.dtype), nonneg[i])
        return jax.tree.unflatten(treedef, out)

    return sampler


def _spec(tree) -> list[tuple[str, tuple[int, ...], np.dtype]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [
        (jax.tree_util.keystr(p), tuple(np.shape(x)), np.dtype(_tree.leaf_dtype(x)))
        for p, x in flat
    ]


def template(sampler: Callable, key, args: tuple | None) -> tuple:
    """Shapes and dtypes of ``sampler(key)``; an error naming the leaf when they do not match
    ``args`` (when given) or are not an argument tuple."""
    if not callable(sampler):
        raise TypeError(f"sampler must be callable as sampler(key); got {type(sampler).__name__}")
    try:
        out = jax.eval_shape(sampler, key)
    except Exception as err:
        raise ValueError(
            f"sampler(key) failed to trace ({type(err).__name__}: {err}); it must be a pure jax "
            "function of a PRNG key returning the argument tuple"
        ) from err
    if not isinstance(out, (tuple, list)):
        raise TypeError(
            f"sampler(key) must return the tuple of the loss's arguments; got {type(out).__name__}"
        )
    out = tuple(out)
    if args is None:
        return out
    want_tree, have_tree = jax.tree.structure(tuple(args)), jax.tree.structure(out)
    if want_tree != have_tree:  # type: ignore[operator]  # jaxlib declares PyTreeDef.__eq__ only
        raise ValueError(
            f"sampler(key) returned a tree with structure {have_tree}, but args has structure "
            f"{want_tree}; the sampler must return arguments shaped like args"
        )
    for (path, shape, dtype), (_, s2, d2) in zip(_spec(tuple(args)), _spec(out), strict=True):
        if (shape, dtype) != (s2, d2):
            raise ValueError(
                f"sampler(key) returned args{path} with shape {s2} and dtype {d2}, but args{path} "
                f"has shape {shape} and dtype {dtype}"
            )
    return out
