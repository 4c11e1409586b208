r"""The types :func:`gradlab.fit` takes and returns, and the constants its checks share.

Kept apart from the loop and the argument checks so that both import them (no cycle), and so
that the sweep can name the protocol a training result satisfies (:class:`FitLike`) without
importing the trainer.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any

#: Matmul precisions ``fit`` and ``sweep`` accept (``jax.default_matmul_precision`` names).
PRECISIONS = (
    "highest",
    "float32",
    "high",
    "bfloat16_3x",
    "tensorfloat32",
    "default",
    "bfloat16",
    "fastest",
)

#: The default divergence bound is ``DIVERGENCE_FACTOR * max(|L0|, 1)``, eq. (2) of ``fit``.
DIVERGENCE_FACTOR = 1e6


def default_divergence_bound(loss0: jax.Array) -> jax.Array:
    r""":math:`\beta = 10^6 \max(|L_0|, 1)`, the loss above which a step counts as divergent.

    Args:
      loss0: the initial loss :math:`L_0` (an array, possibly traced or batched).

    Returns:
      :math:`\beta`, of ``loss0``'s dtype and shape.

    Examples:
      >>> float(default_divergence_bound(jnp.asarray(-3.0)))
      3000000.0
    """
    return DIVERGENCE_FACTOR * jnp.maximum(jnp.abs(loss0), 1.0)


def rose_above_start(loss: jax.Array, loss0: jax.Array) -> jax.Array:
    r"""True where a run's loss ended above where it started: :math:`L > L_0 + \sqrt{\epsilon}
    \max(|L_0|, 1)`, the slack absorbing rounding at a start that is already optimal.

    A run whose loss ends above its start did not train: ``fit`` reports it diverged, whether it
    ran all its steps, stopped early or kept a rising loss under the divergence bound.
    """
    slack = jnp.sqrt(jnp.finfo(loss0.dtype).eps) * jnp.maximum(jnp.abs(loss0), 1.0)
    return loss > loss0 + slack


@dataclasses.dataclass(frozen=True)
class EarlyStop:
    """Seed 002's early-stopping rule, eq. (4) of ``fit``: stop after ``patience`` consecutive
    accepted steps whose full-data loss improvement is below ``tol`` (absolute).

    ``tol`` may be an array (vmapped over); ``patience`` is a Python int. A run that meets the
    rule with its loss above its start is reported diverged, not stopped.
    """

    tol: float | jax.Array = 1e-6
    patience: int = 10


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """The static configuration of one compiled loop (hashable: part of the jit cache key)."""

    steps: int
    record_every: int
    batch_size: int | None
    sampling: str
    patience: int | None
    unroll: int
    n: int | None


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`gradlab.fit` returns; a pytree (``precision`` and ``checks`` are static aux
    data), so it crosses ``jit`` and ``vmap`` (under ``vmap`` every array field gains the
    leading batch axis).

    Attributes:
      params: final parameters (the last accepted ones for a diverged run; never NaN unless
        ``params0`` was).
      history: ``{"loss", "grad_norm", *metrics}``, each of shape ``(steps // record_every,)``,
        eq. (5), at full data. After a run freezes its entries repeat the frozen values.
      history_steps: ``(steps // record_every,)`` int, the step count each entry was taken at.
      loss: full-data loss at ``params``.
      diverged: bool: the run hit eq. (2) (and froze), or its loss ended above its start
        (:func:`rose_above_start`), including a run the early-stopping rule would have stopped.
      stopped_early: bool, the run met eq. (4) with its loss not above its start.
      steps_taken: int32, accepted steps (``steps`` for a run that neither diverged nor stopped).
      opt_state: the optimizer state at ``params`` (e.g. for ``gradlab.optim.fista_iterate``).
      invalid: bool, a value check failed: the loss's own checks on ``params0`` and ``data``
        (the run then never moves: ``steps_taken == 0``), a readable learning rate that is not
        positive, or the loss's checks on the final ``params`` (training left the loss's domain).
      invalid_reason: int32, the index in ``checks`` of the failed check, ``-1`` when valid.
      precision: the matmul precision the loop was traced under (static).
      checks: the value checks made, as messages (static); ``checks[invalid_reason]`` is the
        reason (see :meth:`reasons`).
    """

    params: PyTree
    history: dict[str, jax.Array]
    history_steps: jax.Array
    loss: jax.Array
    diverged: jax.Array
    stopped_early: jax.Array
    steps_taken: jax.Array
    opt_state: PyTree = None
    invalid: jax.Array | None = None
    invalid_reason: jax.Array | None = None
    precision: str = dataclasses.field(default="highest", metadata={"static": True})
    checks: tuple[str, ...] = dataclasses.field(default=(), metadata={"static": True})

    def reasons(self) -> np.ndarray:
        """The failed check's message per run (``""`` where valid), of ``invalid``'s shape.

        Examples:
          >>> import jax.numpy as jnp
          >>> r = FitResult(None, {}, None, None, None, None, None, None,
          ...               jnp.array([False, True]), jnp.array([-1, 0]), checks=("x < 0",))
          >>> r.reasons().tolist()
          ['', 'x < 0']
        """
        codes = np.asarray(self.invalid_reason)
        table = np.asarray(("", *self.checks), dtype=object)
        return np.asarray(table[codes + 1], dtype=object)


jax.tree_util.register_dataclass(FitResult)


@runtime_checkable
class FitLike(Protocol):
    """What a training result offers a sweep's table: the history, the outcome flags.

    :class:`FitResult` satisfies it; so may any other trainer's result (the sweep's Gram path).
    """

    history: dict[str, jax.Array]
    diverged: jax.Array
    steps_taken: jax.Array


__all__ = [
    "DIVERGENCE_FACTOR",
    "PRECISIONS",
    "EarlyStop",
    "FitConfig",
    "FitLike",
    "FitResult",
    "default_divergence_bound",
    "rose_above_start",
]
