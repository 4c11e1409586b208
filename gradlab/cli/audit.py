"""``gradlab audit FN --args ...``: find every custom_jvp / custom_vjp rule inside a function and
check each at the arguments it receives (``gradlab.audit_rules``).

Usage::

    gradlab audit mymod:loss --args mymod:make_args [--argnums 0] [--mode full] [--json out.json]
    gradlab audit mymod:loss --args mymod:make_args --reference host_tanh=mymod:tanh_reference

``--reference NAME=module:function`` (repeatable) gives the reference of a rule whose primal
autodiff cannot differentiate (a ``pure_callback``, a kernel); without one such a rule is
reported unchecked. The exit status is 1 when a rule fails or is unchecked, 0 when all pass.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "audit",
        help="check every custom_jvp/custom_vjp rule inside a function where it is called",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("fn", help="the function, as module:attribute (or file.py:attribute)")
    p.add_argument("--args", required=True, help="module:function returning the arguments, or .npz")
    p.add_argument("--argnums", type=int, default=0, help="argument of the whole-function check")
    p.add_argument("--mode", choices=("full", "fast"), default="full")
    p.add_argument("--reference", action="append", default=[], metavar="NAME=module:function")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import jax

    from gradlab.check import audit_rules
    from gradlab.cli.check import _resolve, _write_json, load_args

    jax.config.update("jax_enable_x64", True)
    try:
        fn = _resolve(args.fn)
        references = {}
        for item in args.reference:
            name, sep, ref = item.partition("=")
            if not sep or not name:
                raise ValueError(f"--reference expects NAME=module:function; got {item!r}")
            references[name] = _resolve(ref)
        report = audit_rules(
            fn, *load_args(args.args), references=references, argnums=args.argnums, mode=args.mode
        )
    except (ValueError, TypeError) as err:
        print(f"gradlab audit: error: {err}", file=sys.stderr)
        return 2
    print(report)
    _write_json(args.json, report.to_dict())
    return 0 if report.ok else 1
