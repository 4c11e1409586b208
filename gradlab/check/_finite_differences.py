r"""The finite-difference witness as a public function, for studies of differences themselves.

``check_grad`` uses finite differences only as a referee; this exposes the same witness (the
four loss values of ``_differences`` eq. (1)-(2), batched with ``vmap`` and chunked under one
``jit``) for users who want the numbers: forward, central and Richardson-extrapolated
differences with their error estimate, per element, as pytrees shaped like the parameters.

.. math::  F(h) = \frac{f(x+he_i) - f(x)}{h}, \quad
           D(h) = \frac{f(x+he_i) - f(x-he_i)}{2h}, \quad
           R = D(\tfrac h2) + \frac{D(\tfrac h2) - D(h)}{3}                              \tag{1}

Truncation error is :math:`O(h)`, :math:`O(h^2)` and :math:`O(h^4)`; rounding error grows as
:math:`\varepsilon/h`, so the best steps are near :math:`\varepsilon^{1/2}`,
:math:`\varepsilon^{1/3}` and :math:`\varepsilon^{1/5}` (``papers/fd_step``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab.check import _differences, _tree, _witnesses

PyTree = Any


class FiniteDifferences(NamedTuple):
    """Finite-difference derivatives of ``loss`` w.r.t. ``args[argnums]``, shaped like it.

    Attributes:
      forward: ``F(h)`` of eq. (1), one-sided.
      central: ``D(h)`` of eq. (1).
      richardson: ``R`` of eq. (1), the witness ``check_grad`` uses as referee.
      error: the estimate of ``|R - true derivative|`` (truncation plus rounding).
      step: the step ``h`` used per element.
    """

    forward: PyTree
    central: PyTree
    richardson: PyTree
    error: PyTree
    step: PyTree


def finite_differences(
    loss: Callable[..., jax.Array],
    *args,
    argnums: int | tuple[int, ...] = 0,
    step: float | None = None,
    fd_memory_budget: int = _differences.DEFAULT_FD_MEMORY_BUDGET,
    memory_budget: int | None = None,
) -> FiniteDifferences:
    """Forward, central and Richardson finite differences of a scalar loss, every element.

    Args:
      loss: ``loss(*args)`` returning a scalar.
      *args: the arguments; ``args[argnums]`` is the pytree differentiated.
      argnums: which argument(s), as in ``jax.grad``.
      step: the step ``h`` for every element; default: the checker's dtype-aware power-of-two
        step ``h ~ eps^(1/5) max(1, |x|)``. Differences are taken in the parameters' dtype.
      fd_memory_budget: bytes of perturbed argument copies alive at once (chunking).
      memory_budget: deprecated name of ``fd_memory_budget``.

    Returns:
      A :class:`FiniteDifferences` of pytrees shaped like ``args[argnums]`` (float64 numpy).

    Examples:
      >>> import jax.numpy as jnp
      >>> fd = finite_differences(lambda w: jnp.sum(jnp.sin(w)), jnp.zeros(3))
      >>> bool(abs(fd.richardson[0] - 1.0) < 1e-6)
      True
    """
    if memory_budget is not None:
        warnings.warn(
            "finite_differences(memory_budget=...) is renamed fd_memory_budget",
            DeprecationWarning,
            2,
        )
        fd_memory_budget = memory_budget
    argnums = _tree.normalize_argnums(argnums, len(args))
    _witnesses.check_scalar_loss(loss, args)
    flat, unravel = ravel_pytree(_tree.get_params(args, argnums))
    x = np.asarray(flat)
    dtype = x.dtype
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"args[{argnums}] must hold floating-point leaves; got dtype {dtype}")
    if step is None:
        h = _differences.steps(x, dtype)
    else:
        if not (np.ndim(step) == 0 and np.isfinite(step) and step > 0):
            raise ValueError(f"step must be a finite positive scalar; got {step!r}")
        h = np.full(x.shape, step, dtype)
    idx = np.arange(x.size, dtype=np.int32)
    chunk = _differences.chunk_size(args, max(1, idx.size), fd_memory_budget)
    run = _differences.fd_program(loss, argnums, chunk)
    values = np.asarray(run(args, jnp.asarray(h), idx), np.float64).reshape(-1, 4)
    f0 = float(loss(*args))
    fd = _differences.FD.from_values(values, h, f0, _differences.eps_of(dtype))
    hh = fd.h
    with np.errstate(all="ignore"):
        forward = (values[:, 0] - f0) / hh  # (1)
        central = (values[:, 0] - values[:, 1]) / (2 * hh)  # (1)
    richardson, error = fd.richardson()  # (1)

    def tree(flat):
        return jax.tree.map(np.asarray, unravel(jnp.asarray(flat, jnp.result_type(float))))

    return FiniteDifferences(tree(forward), tree(central), tree(richardson), tree(error), tree(hh))
