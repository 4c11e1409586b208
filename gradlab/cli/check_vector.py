"""``gradlab check F RULE --kind vjp|jvp|jacobian|grad2``: the vector checks from the command line
(called by ``gradlab.cli.check``; the argument parsing lives there)."""

from __future__ import annotations

from collections.abc import Callable


def check_kind(kind: str, f: Callable, rule: Callable, args: tuple, argnums: int, mode: str):
    """The report of ``check_vjp`` / ``check_jvp`` / ``check_jacobian`` / ``check_grad_of_grad``."""
    from gradlab.check import check_grad_of_grad, check_jacobian, check_jvp, check_vjp

    checks = {
        "vjp": check_vjp,
        "jvp": check_jvp,
        "jacobian": check_jacobian,
        "grad2": check_grad_of_grad,
    }
    if kind not in checks:
        raise ValueError(f"--kind must be one of {sorted(checks)} or grad; got {kind!r}")
    return checks[kind](f, rule, *args, argnums=argnums, mode=mode)
