r"""The public vector checks: ``check_vjp``, ``check_jvp``, ``check_jacobian``, ``check_rules``.

Three witnesses for the Jacobian :math:`J` of ``f`` w.r.t. ``args[argnums]``: the hand rule,
JAX's autodiff of ``f`` *with its custom rules removed* (``_rules`` eq. (1); or of
``reference``), and central differences with Richardson extrapolation (``_vector`` eq. (1)).
``mode="full"`` compares every entry of :math:`J`; ``mode="fast"`` compares
:math:`u^\top J` (VJP rules) or :math:`J t` (JVP rules) along ``directions`` seeded random
cotangents / tangents per leaf (``_vector`` eq. (2)) and reruns in full the blocks
``d output-leaf / d input-leaf`` that disagree, so a failure is named by output leaf and index,
input leaf and index. Complex leaves follow JAX's convention (``_complex`` eq. (1)-(2)); a hand
value that is the conjugate of the right one is reported as ``Finding.CONJUGATE``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from gradlab.check._settings import seed_words as _seed_of
from gradlab.check._vector import Kind
from gradlab.check._vector_check import DEFAULT_BUDGET, Options, run
from gradlab.check._vector_report import VectorReport


def _options(mode, rtol, atol, key, directions, fd_memory_budget, n_worst) -> Options:
    return Options(mode, rtol, atol, _seed_of(key), directions, fd_memory_budget, n_worst)


def check_vjp(
    f: Callable[..., Any],
    vjp: Callable[..., Any],
    *args: Any,
    argnums: int | tuple[int, ...] = 0,
    cotangents: Any = None,
    mode: str = "fast",
    reference: Callable[..., Any] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    key: Any = None,
    directions: int = 2,
    fd_memory_budget: int = DEFAULT_BUDGET,
    n_worst: int = 3,
) -> VectorReport:
    r"""Check a hand VJP :math:`u \mapsto u^\top J` of ``f`` against autodiff and differences.

    Args:
      f: ``f(*args)`` returns a pytree of inexact arrays (real or complex).
      vjp: ``vjp(*args, cotangent)`` returns the cotangent of ``args[argnums]`` (its pytree and
        shapes); the cotangent has ``f``'s output tree. JAX's pairing for complex values: a
        cotangent ``c`` acts on ``t`` as ``Re sum(c t)``. Traced with ``jax.jit``/``vmap``.
      *args: the arguments of ``f``.
      argnums: which argument(s), as in ``jax.vjp``.
      cotangents: fast mode: the cotangents to probe with (a pytree like ``f``'s output, or a
        list of them) instead of seeded random ones; a failing input leaf is rerun in full
        against every output leaf. Full mode checks every entry and ignores them.
      mode: ``"fast"`` (random probes, failing blocks rerun in full) or ``"full"`` (every entry).
      reference: a function equal to ``f`` in value whose autodiff is the truth; default ``f``
        with every ``custom_jvp``/``custom_vjp`` rule replaced by its primal.
      rtol, atol: tolerances (default :math:`2^{12}\varepsilon` of the dtype, ``_compare``).
      key: seed (int or PRNG key) of the fast-mode probes.
      directions: probes per output leaf and per input leaf in fast mode.
      fd_memory_budget: bytes for ``lax.map`` chunks of probes and finite differences.
      n_worst: entries listed per block.

    Returns:
      A :class:`VectorReport`: ``.ok``, ``.verdicts`` (``Finding`` kinds), ``.locations``
      (rule, output leaf and index, input leaf and index), ``str()`` a table, ``to_dict()``.

    Examples:
      >>> import jax.numpy as jnp, gradlab
      >>> f = lambda x: jnp.sin(x) * 2.0
      >>> gradlab.check_vjp(f, lambda x, ct: 2.0 * jnp.cos(x) * ct, jnp.arange(3.0)).ok
      True
    """
    opts = _options(mode, rtol, atol, key, directions, fd_memory_budget, n_worst)
    opts = dataclasses.replace(opts, cotangents=cotangents)
    return run(Kind.VJP, f, vjp, args, argnums, reference, opts)


def check_jvp(
    f: Callable[..., Any],
    jvp: Callable[..., Any],
    *args: Any,
    argnums: int | tuple[int, ...] = 0,
    mode: str = "fast",
    reference: Callable[..., Any] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    key: Any = None,
    directions: int = 2,
    fd_memory_budget: int = DEFAULT_BUDGET,
    n_worst: int = 3,
) -> VectorReport:
    r"""Check a hand JVP :math:`t \mapsto J t` of ``f``, written as a ``custom_jvp`` rule.

    Args:
      f: ``f(*args)`` returns a pytree of inexact arrays.
      jvp: ``jvp(primals, tangents) -> (primal_out, tangent_out)`` exactly as passed to
        ``defjvp``: ``primals`` is ``args``; ``tangents`` holds the tangent at ``argnums`` and
        zeros elsewhere (``float0`` for integer arguments). ``primal_out`` must equal
        ``f(*args)`` (a rule out of step with ``f`` is an error).
      *args, argnums, mode, reference, rtol, atol, key, directions, fd_memory_budget, n_worst:
        as in :func:`check_vjp`.

    Returns:
      A :class:`VectorReport`.

    Examples:
      >>> import jax.numpy as jnp, gradlab
      >>> jvp = lambda p, t: (jnp.exp(p[0]), jnp.exp(p[0]) * t[0])
      >>> gradlab.check_jvp(jnp.exp, jvp, jnp.arange(3.0)).ok
      True
    """
    opts = _options(mode, rtol, atol, key, directions, fd_memory_budget, n_worst)
    return run(Kind.JVP, f, jvp, args, argnums, reference, opts)


def check_jacobian(
    f: Callable[..., Any],
    jac: Callable[..., Any],
    *args: Any,
    argnums: int | tuple[int, ...] = 0,
    mode: str = "full",
    reference: Callable[..., Any] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    key: Any = None,
    directions: int = 2,
    fd_memory_budget: int = DEFAULT_BUDGET,
    n_worst: int = 3,
) -> VectorReport:
    """Check a hand Jacobian: ``jac(*args)`` is the pytree ``jax.jacobian(f, argnums)(*args)``
    returns (for each output leaf, a tree like ``args[argnums]`` of ``out.shape + in.shape``).
    Real inputs and outputs only. Other arguments as in :func:`check_vjp`.

    Examples:
      >>> import jax.numpy as jnp, gradlab
      >>> gradlab.check_jacobian(jnp.sin, lambda x: jnp.diag(jnp.cos(x)), jnp.arange(3.0)).ok
      True
    """
    opts = _options(mode, rtol, atol, key, directions, fd_memory_budget, n_worst)
    return run(Kind.JACOBIAN, f, jac, args, argnums, reference, opts)


def check_rules(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | tuple[int, ...] = 0,
    mode: str = "fast",
    reference: Callable[..., Any] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    key: Any = None,
    directions: int = 2,
    fd_memory_budget: int = DEFAULT_BUDGET,
    n_worst: int = 3,
) -> VectorReport:
    """Check ``f``'s own custom rules: ``jax.vjp(f)`` (which runs every ``custom_jvp`` /
    ``custom_vjp`` rule inside ``f``) against autodiff of ``f`` with the rules removed.
    See :func:`audit_rules` to check each rule inside a larger function on its own.

    Examples:
      >>> import jax, jax.numpy as jnp, gradlab
      >>> @jax.custom_jvp
      ... def f(x):
      ...     return jnp.sin(x)
      >>> _ = f.defjvp(lambda p, t: (f(p[0]), jnp.cos(p[0]) * t[0]))
      >>> gradlab.check_rules(f, jnp.arange(3.0)).ok
      True
    """
    opts = _options(mode, rtol, atol, key, directions, fd_memory_budget, n_worst)
    return run(Kind.OWN, f, None, args, argnums, reference, opts, getattr(f, "__name__", ""))
