"""``gradlab check F RULE --kind vjp|jvp|jacobian|grad2`` and ``gradlab check FN --kind rules``:
the vector checks and the custom-rule audit from the command line (called by
``gradlab.cli.check``; the argument parsing lives there)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def check_kind(kind: str, f: Callable, rule: Callable, args: tuple, argnums: int, mode: str):
    """The report of ``check_vjp`` / ``check_jvp`` / ``check_jacobian`` / ``check_grad_of_grad``."""
    from gradlab.check import check_grad_of_grad, check_jacobian, check_jvp, check_vjp

    checks: dict[str, Callable[..., Any]] = {
        "vjp": check_vjp,
        "jvp": check_jvp,
        "jacobian": check_jacobian,
        "grad2": check_grad_of_grad,
    }
    if kind not in checks:
        raise ValueError(f"--kind must be one of {sorted(checks)} or grad; got {kind!r}")
    return checks[kind](f, rule, *args, argnums=argnums, mode=mode)


def audit(args, resolve: Callable, load_args: Callable, write_json: Callable) -> int:
    """``--kind rules``: :func:`gradlab.audit_rules` on the one target, exit 1 unless ok.

    ``--reference NAME=module:function`` is not a flag of ``gradlab check``: give references in
    Python (``audit_rules(fn, *args, references=...)``); without them a rule whose primal autodiff
    cannot differentiate is reported unchecked (exit 1), never passed.
    """
    from gradlab.check import audit_rules
    from gradlab.cli import UsageError

    if len(args.targets) != 1 or ":" not in args.targets[0]:
        raise UsageError("--kind rules takes one module:attribute target: the function FN")
    if args.args is None:
        raise UsageError("--kind rules needs --args (module:function or .npz)")
    fn = resolve(args.targets[0])
    report = audit_rules(fn, *load_args(args.args), argnums=args.argnums, mode=args.mode)
    print(report)
    write_json(args.json, report.to_dict())
    return 0 if report.ok else 1
