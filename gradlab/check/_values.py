"""The loss's own value checks, run before the check: invalid inputs raise, never check "ok".

A registered derivation validates its values (``pi`` on the simplex, ``s > 0``, data in the
support, no NaN) through ``gradlab._validate``; on concrete arrays those checks raise, but the
checker only ever *traces* the loss, where they cannot. :func:`check_values` traces the loss
once more inside ``jit`` with a collector open (``gradlab._validate.validity``): XLA keeps only
the checks' arithmetic (the loss's output is discarded), and the program is cached per loss, so
a repeated check with the same shapes costs one small device call. A loss that makes no value
checks yields a constant verdict.

When a check fails, the loss is called once eagerly on the concrete arguments, where the same
check raises with the first bad entry (``x must lie in the support [0, 2]; got 3 at index
(1,)``); a loss whose checks only run traced (it calls its own ``jax.jit``) is reported with the
traced message alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax

from gradlab import _validate

__all__ = ["check_values"]


@functools.lru_cache(maxsize=256)
def _validity_program(loss: Callable) -> Callable:
    return jax.jit(functools.partial(_validate.validity, loss))


def _verdict(loss: Callable, args: tuple) -> _validate.Validity | None:
    """The traced verdict; None when the loss does not trace here (the pipeline then raises
    its own, specific error on the same call)."""
    try:
        program = _validity_program(loss)
    except TypeError:  # an unhashable callable: no cache
        program = jax.jit(functools.partial(_validate.validity, loss))
    try:
        return program(*args)
    except Exception:  # noqa: BLE001 - not traceable here: the later stages say why
        return None


def check_values(loss: Callable, args: tuple, where: str = "check_grad: ") -> None:
    """Raise :class:`gradlab.InvalidValueError` when ``loss(*args)`` fails a value check.

    Args:
      loss: the loss; its ``gradlab._validate`` value checks are the ones run.
      args: the loss's arguments (concrete).
      where: the message's prefix, naming the caller.

    Raises:
      InvalidValueError: naming the failed check and, when the loss checks eagerly too, the
        first bad entry.
    """
    verdict = _verdict(loss, args)
    if verdict is None or not bool(verdict.bad):
        return
    try:
        loss(*args)  # the same checks on concrete values raise with the first bad entry
    except ValueError as err:
        raise _validate.InvalidValueError(f"{where}{err}") from err
    except Exception:  # noqa: BLE001, S110 - not runnable eagerly: the traced message below
        pass
    verdict.raise_if_bad(where)
