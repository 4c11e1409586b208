r"""Second order: differentiate the hand gradient itself and check it against the loss's Hessian.

A hand gradient :math:`g(x) \approx \nabla L(x)` can be right in value and wrong as a function
JAX differentiates: hidden behind ``stop_gradient`` (its derivative is 0), or computed by a
``custom_vjp`` whose backward JAX cannot differentiate (a ``pure_callback``, a non-differentiable
solve). First-order checks pass it; anything that takes a Hessian, an HVP, a meta-gradient or
a ``jax.hessian`` of the loss through it is wrong. The check (PyTorch's ``gradgradcheck``):

.. math::  \underbrace{\mathrm{vjp}(g)(u)}_{\text{hand: JAX differentiates } g}
           \;\text{ vs }\; \underbrace{u^\top \nabla^2 \mathrm{strip}(L)}_{\text{autodiff}}
           \;\text{ vs }\; \underbrace{\text{finite differences of } g}_{\text{referee}}   \tag{1}

with ``strip(L)`` the loss with its custom rules removed (``_rules`` eq. (1)), through the
vector checker (every entry, or seeded probes in fast mode). When JAX cannot differentiate
:math:`g` at all, the report says ``RULE_NOT_DIFFERENTIABLE`` with JAX's reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

from gradlab.check import _rules, _vector_check
from gradlab.check._settings import seed_words as _seed_of
from gradlab.check._vector import Kind
from gradlab.check._vector_check import Options
from gradlab.check._vector_report import VectorReport
from gradlab.check._verdict import Finding, Verdict


def check_grad_of_grad(
    loss: Callable[..., jax.Array],
    grad: Callable[..., Any],
    *args: Any,
    argnums: int | tuple[int, ...] = 0,
    mode: str = "full",
    rtol: float | None = None,
    atol: float | None = None,
    key: Any = None,
    directions: int = 2,
) -> VectorReport:
    """Check that JAX's derivative of the hand gradient is the Hessian of ``loss``, eq. (1).

    Args:
      loss: ``loss(*args)``, a real scalar.
      grad: ``grad(*args)``, the hand gradient w.r.t. ``args[argnums]`` (as in ``check_grad``).
      *args, argnums, mode, rtol, atol, key, directions: as in ``check_vjp``.

    Returns:
      A :class:`VectorReport` whose blocks are Hessian blocks ``d grad-leaf / d param-leaf``;
      ``Finding.HAND_BUG`` where JAX's derivative of ``grad`` is wrong, ``VALUE_MISMATCH`` when
      ``grad`` itself is wrong in value (check it with ``check_grad`` first),
      ``RULE_NOT_DIFFERENTIABLE`` when JAX cannot differentiate it.

    Examples:
      >>> import jax, jax.numpy as jnp, gradlab
      >>> loss = lambda w: jnp.sum(w ** 3)
      >>> hidden = lambda w: jax.lax.stop_gradient(3 * w ** 2)  # right value, zero derivative
      >>> gradlab.check_grad_of_grad(loss, hidden, jnp.arange(1.0, 4.0)).ok
      False
    """
    opts = Options(mode, rtol, atol, _seed_of(key), directions)
    reference = _hessian_reference(loss, argnums)
    name = getattr(grad, "__name__", "") or "grad"
    try:
        return _vector_check.run(Kind.OWN, grad, None, args, argnums, reference, opts, name)
    except Exception as err:  # noqa: BLE001 - JAX refusing to differentiate grad is the finding
        if not _differentiation_error(err):
            raise
        return _not_differentiable(name, err, opts)


@functools.lru_cache(maxsize=256)
def _hessian_reference(loss: Callable, argnums) -> Callable:
    """``jax.grad`` of the loss with its custom rules removed (one per loss: programs reused)."""
    return jax.grad(_rules.stripped(loss), argnums)


def _differentiation_error(err: Exception) -> bool:
    text = f"{type(err).__name__}: {err}".lower()
    return any(
        word in text
        for word in ("jvp", "vjp", "differentiat", "transpose", "linearize", "callback")
    )


def _not_differentiable(name: str, err: Exception, opts: Options) -> VectorReport:
    first = str(err).strip().splitlines()
    why = f"{type(err).__name__}: {first[0] if first else ''}"[:240]
    verdict = Verdict(
        Finding.RULE_NOT_DIFFERENTIABLE,
        name,
        detail=f"JAX cannot differentiate the hand gradient ({why}); a Hessian, HVP or "
        "meta-gradient taken through it fails",
    )
    return VectorReport(
        ok=False,
        mode=opts.mode,
        dtype="",
        rtol=float("nan") if opts.rtol is None else opts.rtol,
        atol=opts.atol,
        hand_witness="differentiated by JAX",
        leaves=(),
        verdicts=(verdict,),
        kind="grad of grad",
        rule=name,
        title="check_grad_of_grad",
    )
