r"""Reading an optimizer's learning rate back, so that a non-positive one is caught.

An optax ``GradientTransformation`` is a pair of closures: ``optax.sgd(lr)`` keeps ``lr`` in a
closure that nothing can read once the transformation is built. A learning rate is readable

1. from a transformation that says it, :class:`WithLearningRate` (attribute ``learning_rate``):
   what :func:`with_learning_rate` builds and what gradlab's own optimizers return
   (``exponentiated_gradient``, ``ista``, ``fista``, ``projected`` of a readable inner one);
2. from the state of ``optax.inject_hyperparams``, anywhere in the state tree (inside
   ``optax.chain`` too), under the names :data:`NAMES`.

The rule :func:`learning_rates` applies: a constant learning rate must be :math:`\eta > 0`; a
scheduled one (a callable, or a schedule injected with ``inject_hyperparams``) is read at step
0 and must be :math:`\eta_0 \ge 0` (warm-up schedules start at 0). A learning rate closed over
by a bare ``optax.sgd(lr)`` is not readable: ``gradlab.fit`` then relies on its divergence rule
(a run whose loss ends above its start is diverged), which catches a negative one after the
fact. Wrap it (``with_learning_rate(optax.sgd, lr)``) to have it checked before training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax

NAMES = ("learning_rate", "lr", "step_size")


class WithLearningRate(optax.GradientTransformation):
    """An optax ``GradientTransformation`` that carries the learning rate it was built with.

    A tuple ``(init, update)`` like any optax transformation (``optax.chain`` takes it), plus
    the attribute ``learning_rate``: a float, an array (possibly traced) or a schedule.
    """

    learning_rate: Any


def carrying(transformation: optax.GradientTransformation, learning_rate: Any) -> WithLearningRate:
    """``transformation`` as a :class:`WithLearningRate` that says ``learning_rate``."""
    out = WithLearningRate(transformation.init, transformation.update)
    out.learning_rate = learning_rate
    return out


def with_learning_rate(
    factory: Callable[..., optax.GradientTransformation],
    learning_rate: Any,
    **hyperparams: Any,
) -> WithLearningRate:
    """``factory(learning_rate=learning_rate, **hyperparams)``, with its learning rate readable.

    Costs nothing at run time (unlike ``optax.inject_hyperparams``, which carries the
    hyperparameters in the optimizer state).

    Args:
      factory: an optax optimizer factory taking ``learning_rate`` (``optax.sgd``,
        ``optax.adam``, ...).
      learning_rate: a float, a 0-d array (possibly traced, e.g. vmapped over) or a schedule.
      **hyperparams: the factory's other arguments (``momentum=0.9``).

    Returns:
      A :class:`WithLearningRate`.

    Examples:
      >>> import optax
      >>> opt = with_learning_rate(optax.sgd, 0.1, momentum=0.9)
      >>> opt.learning_rate
      0.1
    """
    return carrying(factory(learning_rate=learning_rate, **hyperparams), learning_rate)


class LearningRate(NamedTuple):
    """A learning rate read from an optimizer (see the module docstring for the rule)."""

    name: str  # where it was read, for messages
    value: Any  # a float or an array, possibly traced
    scheduled: bool  # a schedule's value at step 0: only >= 0 is required


def learning_rates(optimizer: optax.GradientTransformation, state: Any) -> list[LearningRate]:
    """Every learning rate ``optimizer`` exposes, given its initial ``state``.

    Args:
      optimizer: any optax transformation.
      state: ``optimizer.init(params)``.

    Returns:
      The readable learning rates, possibly none.
    """
    found = []
    lr = getattr(optimizer, "learning_rate", None)
    if lr is not None:
        scheduled = callable(lr)
        found.append(LearningRate("learning_rate", lr(0) if scheduled else lr, scheduled))
    nodes = jax.tree.leaves(state, is_leaf=lambda s: hasattr(s, "hyperparams"))
    for node in nodes:
        hyper = getattr(node, "hyperparams", None)
        if not isinstance(hyper, dict):
            continue
        schedules = getattr(node, "hyperparams_states", None) or {}
        for key in NAMES:
            if key in hyper and not callable(hyper[key]):
                found.append(LearningRate(key, hyper[key], key in schedules))
    return found


__all__ = ["NAMES", "LearningRate", "WithLearningRate", "learning_rates", "with_learning_rate"]
