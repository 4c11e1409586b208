"""The record every derivation module exports, and the contract the registry relies on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from gradlab import _validate as v

PyTree = Any
#: A parameter pytree with named leaves, e.g. ``{"w": (d,), "b": ()}``.
Params = dict[str, jax.Array]
MakeArgs = Callable[[jax.Array, tuple[int, ...], Any], tuple]


@dataclasses.dataclass(frozen=True)
class Derivation:
    """A loss, its hand-derived gradient and (where one exists) its hand Hessian.

    Contract, checked by ``tests/test_derivations.py`` for every registered entry:

    * ``loss(*args)`` returns a scalar; ``args[argnums]`` is the parameter pytree with named
      leaves (``{"w", "b"}``, ``{"mu", "s", "pi"}``), the other arguments are data and
      hyperparameters (arrays, so they can be ``vmap``-ed).
    * ``grad(*args)`` returns the same pytree as ``jax.grad(loss, argnums)(*args)``.
    * ``hessian(*args)``, when given, returns the same nested pytree as ``jax.hessian``.
    * ``hvp(*args, v)``, when given, returns the Hessian applied to the tangent pytree ``v``.
    * ``make_args(key, shape, dtype)`` builds a random, valid argument tuple; ``shapes`` are the
      sizes tests use (at least two). The meaning of ``shape`` is the module's (e.g. ``(n, d)``).
    * ``terms`` / ``term_grads``: for composite objectives, named terms whose sum is ``loss``,
      each with its own hand gradient; the checker uses them to blame a term.
    * ``kinks``: True when the loss has non-differentiable points (the L1 penalty at 0); the
      hand gradient there is a subgradient, tested by membership, not equality.
    """

    name: str
    loss: Callable[..., jax.Array]
    grad: Callable[..., PyTree]
    make_args: MakeArgs
    shapes: tuple[tuple[int, ...], ...]
    hessian: Callable[..., PyTree] | None = None
    hvp: Callable[..., PyTree] | None = None
    terms: Mapping[str, Callable[..., jax.Array]] | None = None
    term_grads: Mapping[str, Callable[..., PyTree]] | None = None
    argnums: int = 0
    kinks: bool = False
    seed: str | None = None
    note: str | None = None
    summary: str = ""

    def example(
        self, key: jax.Array, shape: tuple[int, ...] | None = None, dtype: Any = jnp.float64
    ) -> tuple:
        """A random argument tuple of the given size (the first of ``shapes`` by default)."""
        return self.make_args(key, self.shapes[0] if shape is None else tuple(shape), dtype)

    def validate(self, *args: Any) -> v.Validity:
        """The value checks of ``loss(*args)`` (simplex, positivity, support, finiteness) as a
        traced :class:`gradlab._validate.Validity`; call it inside ``jit``/``vmap``.

        Shape and dtype errors raise at trace time; concrete arguments raise at once. Under a
        trace, ``validity.bad`` says whether a check failed and ``validity.message()`` (once
        concrete) which; ``validity.checkify()`` re-emits it as ``checkify.check`` calls.

        Examples:
          >>> import jax, jax.numpy as jnp
          >>> from gradlab.derivations import get
          >>> d = get("softmax_nll")
          >>> f = jax.jit(lambda theta, x: d.validate({"theta": theta}, x))
          >>> f(jnp.zeros(3), jnp.array([0, 5])).message()
          'x must lie in the support [0, 2]'
        """
        return v.validity(self.loss, *args)
