"""gradlab check: the three-witness table for the registry, or a check of your own derivation.

Usage:

    gradlab check                         # every registered derivation, one row each
    gradlab check mse_mean l1 --float32   # some of them, in float32 (plus a float64 copy)
    gradlab check mymod:loss mymod:grad --args mymod:make_args [--argnums 0] [--json out.json]
    gradlab check mymod:loss mymod:grad --args point.npz
    gradlab check mymod:loss mymod:loss_and_grad --args mymod:make_args --value-and-grad
    gradlab check mymod:f mymod:f_vjp --kind vjp --args mymod:make_args   # any function's rule
    gradlab check mymod:loss --kind rules --args mymod:make_args  # audit its custom rules
    gradlab check nb.ipynb:LinearModel.backward   # one gradient in a notebook or script

A user's derivation is two module:attribute references (the module is imported from the
current directory or sys.path; path/to/file.py:name works too). Its arguments come from --args:
either module:function, called with no arguments and returning the argument tuple (pytrees
allowed), or an .npz file whose arrays are the positional arguments in order
(np.savez(path, *args) writes arr_0, arr_1, ...; a key "0.w" puts the array at args[0]["w"]).

One target NOTEBOOK.ipynb:NAME or SCRIPT.py:NAME (no --args) audits that gradient where it is
written, as gradlab audit --only NAME does: its loss, arguments and blame are found in the
document.

Exit status: 0 when everything passes, 1 on any mismatch, 2 on a usage error (an unknown name,
a missing module, file or --args, an unwritable --json), in one line.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from gradlab.cli import UsageError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "check",
        help="check hand gradients with three witnesses (hand, jax.grad, finite differences)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "targets",
        nargs="*",
        help="registered derivation names (default: all), LOSS GRAD as module:attribute, or "
        "one NOTEBOOK.ipynb:NAME / SCRIPT.py:NAME to audit",
    )
    p.add_argument("--args", help="module:function returning the argument tuple, or an .npz file")
    p.add_argument("--argnums", type=int, default=0, help="argument to differentiate (default 0)")
    p.add_argument(
        "--kind",
        choices=("grad", "vjp", "jvp", "jacobian", "grad2", "rules"),
        default="grad",
        help="what GRAD is: a gradient (default), a VJP, a JVP rule, a Jacobian of the vector "
        "function F, or a gradient whose own derivative is checked (grad2); 'rules' takes one "
        "target FN and audits every custom_jvp/custom_vjp rule inside it",
    )
    p.add_argument(
        "--mode",
        choices=("full", "fast"),
        default="full",
        help="full: every element against finite differences (default); fast: a few random "
        "directions per leaf through JVPs, a failing leaf rerun in full to localize it",
    )
    p.add_argument(
        "--value-and-grad",
        action="store_true",
        help="GRAD returns (value, gradient), as scikit-learn's loss_gradient functions do",
    )
    p.add_argument("--float32", action="store_true", help="registry: check in float32 as well")
    p.add_argument("--all-shapes", action="store_true", help="registry: every size, not the first")
    p.add_argument("--no-hessian", action="store_true", help="registry: skip Hessians and HVPs")
    p.add_argument(
        "--search",
        type=int,
        metavar="N",
        help="registry: also search N sampled inputs per derivation (gradlab.search_grad)",
    )
    p.add_argument("--json", metavar="FILE", help="write the reports as JSON")
    p.add_argument("--verbose", "-v", action="store_true", help="print every full report")
    p.set_defaults(func=run)


def _resolve(ref: str):
    """``module:attr`` or ``file.py:attr`` to the object."""
    if ":" not in ref:
        raise UsageError(f"expected module:attribute (e.g. mymod:loss); got {ref!r}")
    mod, attr = ref.rsplit(":", 1)
    if mod.endswith(".py"):
        path = Path(mod)
        if not path.is_file():
            raise UsageError(f"{ref!r}: no file {path}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"{ref!r}: {path} cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name is None or not mod.startswith(err.name):
                raise  # the module exists but imports something missing: its own one-line error
            raise UsageError(
                f"{ref!r}: no module named {err.name!r} (imported from the current directory or "
                "sys.path)"
            ) from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{ref!r}: {mod} has no attribute {part!r}")
        obj = getattr(obj, part)
    return obj


def load_args(spec: str) -> tuple:
    """The argument tuple from ``module:function`` or an ``.npz`` file (see the module doc)."""
    import numpy as np

    if spec.endswith(".npz"):
        if not Path(spec).is_file():
            raise UsageError(f"--args {spec}: no such file")
        data = np.load(spec)
        args: dict[int, Any] = {}
        for key in data.files:
            head, _, leaf = key.partition(".")
            pos = int(head[4:]) if head.startswith("arr_") else int(head)
            if leaf:
                args.setdefault(pos, {})[leaf] = data[key]
            else:
                args[pos] = data[key]
        if sorted(args) != list(range(len(args))):
            raise ValueError(f"{spec}: positional arguments {sorted(args)} are not 0..n-1")
        return tuple(args[i] for i in range(len(args)))
    fn = _resolve(spec)
    out = fn() if callable(fn) else fn
    if not isinstance(out, (tuple, list)):
        raise ValueError(
            f"--args {spec} must return a tuple of arguments; got {type(out).__name__}"
        )
    return tuple(out)


def _row(name, shape, report, extra) -> tuple[str, ...]:
    rel = max((leaf.max_rel_err for leaf in report.leaves), default=0.0)
    agree, n = report.fd_agree
    kinks = len(report.kinks)
    failing = next((v for v in report.verdicts if v.failing), None)
    verdict = "ok" if report.ok else f"MISMATCH: {failing if failing else report.verdicts[0]}"
    return (
        name,
        "x".join(map(str, shape)),
        f"{rel:.1e}",
        f"{agree}/{n}" if n else "-",
        str(kinks),
        extra,
        verdict[:90],
    )


def _table(rows) -> str:
    head = (
        "derivation",
        "shape",
        "hand~autodiff rel err",
        "fd agrees",
        "kinks",
        "hessian/hvp",
        "verdict",
    )
    from gradlab.check._table import format_table

    return "\n".join(format_table([head, *rows], rule=True))


def _check_registry(args) -> int:
    import jax.numpy as jnp

    from gradlab.derivations import REGISTRY
    from gradlab.testing import check_derivation

    names = args.targets or list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise UsageError(f"unknown derivation(s) {unknown}; registered: {sorted(REGISTRY)}")
    dtypes = [jnp.float64] + ([jnp.float32] if args.float32 else [])
    rows, dump, ok = [], {}, True
    t0 = time.perf_counter()
    for name in names:
        d = REGISTRY[name]
        for shape in d.shapes if args.all_shapes else d.shapes[:1]:
            for dtype in dtypes:
                reports = check_derivation(
                    d,
                    0,
                    shape,
                    dtype,
                    mode=args.mode,
                    hessian=not args.no_hessian and dtype == jnp.float64,
                )
                g = reports["grad"]
                extra = (
                    ", ".join(
                        f"{k} {'ok' if r.ok else 'MISMATCH'}"
                        for k, r in reports.items()
                        if k != "grad"
                    )
                    or "-"
                )
                label = name if dtype == jnp.float64 else f"{name} (float32)"
                rows.append(_row(label, shape, g, extra))
                good = all(r.ok for r in reports.values())
                ok &= good
                key = f"{label}@{'x'.join(map(str, shape))}"
                dump[key] = {k: r.to_dict() for k, r in reports.items()}
                if args.verbose or not good:
                    for k, r in reports.items():
                        if args.verbose or not r.ok:
                            print(f"--- {key} {k}\n{r}\n")
    print("gradlab check: three witnesses per element -- hand gradient, jax.grad, central finite")
    print(
        "differences (Richardson); hand vs autodiff at rtol 2^12 eps, finite differences referee."
    )
    print(_table(rows))
    n_bad = sum(1 for r in rows if r[-1] != "ok")
    print(f"{len(rows)} check(s), {n_bad} mismatch(es), {time.perf_counter() - t0:.1f} s")
    if args.search is not None:
        ok &= _search_registry(names, args.search, dump)
    _write_json(args.json, dump)
    return 0 if ok else 1


def _search_registry(names, n: int, dump: dict) -> bool:
    """``search_grad`` over ``n`` inputs from each derivation's ``make_args`` (float64)."""
    import jax.numpy as jnp

    from gradlab.check import search_grad
    from gradlab.check._table import format_table
    from gradlab.derivations import REGISTRY

    rows, ok = [], True
    for name in names:
        d = REGISTRY[name]
        shape = d.shapes[0]
        sampler = lambda key, d=d, shape=shape: d.make_args(key, shape, jnp.float64)  # noqa: E731
        rep = search_grad(d.loss, d.grad, sampler, n=n, argnums=d.argnums)
        ok &= rep.ok
        dump[f"{name}@search"] = rep.to_dict()
        rows.append((name, str(rep.n), str(rep.disagree), str(rep.out_of_domain),
                     f"{rep.inputs_per_second:.0f}", rep.summary()[:90]))  # fmt: skip
        if not rep.ok:
            print(f"--- {name} search\n{rep}\n")
    head = ("derivation", "inputs", "disagree", "out of domain", "inputs/s", "search")
    print(f"\nsearch: hand vs autodiff over {n} sampled inputs each (make_args), kinks refereed")
    print("\n".join(format_table([head, *rows], rule=True)))
    return ok


def _check_user(args) -> int:
    from gradlab.check import check_grad

    loss, grad = (_resolve(t) for t in args.targets)
    if args.args is None:
        raise UsageError("checking your own derivation needs --args (module:function or .npz)")
    fargs = load_args(args.args)
    if args.kind != "grad":
        from gradlab.cli.check_vector import check_kind

        report = check_kind(args.kind, loss, grad, fargs, args.argnums, args.mode)
    else:
        report = check_grad(
            loss,
            grad,
            *fargs,
            argnums=args.argnums,
            mode=args.mode,
            value_and_grad=args.value_and_grad,
        )
    print(report)
    _write_json(args.json, report.to_dict())
    return 0 if report.ok else 1


def _check_audit(args) -> int:
    """One ``NOTEBOOK.ipynb:NAME`` / ``SCRIPT.py:NAME``: ``gradlab.audit.audit_target``."""
    from gradlab.audit import audit_target

    if args.args is not None:
        raise UsageError(
            f"{args.targets[0]} is audited where it is written (its arguments come from the "
            "document); --args applies to LOSS GRAD"
        )
    report = audit_target(args.targets[0])
    print("\n".join(report.lines(verbose=args.verbose)))
    _write_json(args.json, report.to_dict())
    return 0 if report.ok else 1


def _is_document_target(targets) -> bool:
    path, sep, _ = targets[0].rpartition(":") if len(targets) == 1 else ("", "", "")
    return bool(sep) and path.endswith((".ipynb", ".py"))


def _check_json_writable(path) -> None:
    """Refuse an unwritable ``--json`` before any work (the reports would be lost)."""
    if not path:
        return
    target = Path(path)
    existed = target.exists()
    try:
        with target.open("a"):
            pass
    except OSError as err:
        raise UsageError(
            f"--json {path}: cannot write it ({err.strerror}); the reports would be lost"
        ) from None
    if not existed:
        target.unlink()


def _write_json(path, data) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, allow_nan=False, default=str))
        print(f"wrote {path}")


def run(args) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    _check_json_writable(args.json)
    if args.kind == "rules":
        from gradlab.cli.check_vector import audit

        return audit(args, _resolve, load_args, _write_json)
    if args.kind == "grad" and _is_document_target(args.targets):
        return _check_audit(args)
    if len(args.targets) == 2 and all(":" in t for t in args.targets):
        return _check_user(args)
    if any(":" in t for t in args.targets):
        raise UsageError(
            "give exactly two module:attribute targets LOSS GRAD, or one NOTEBOOK.ipynb:NAME"
        )
    if args.args:
        raise UsageError("--args applies to a user's LOSS GRAD, not to registry names")
    return _check_registry(args)
