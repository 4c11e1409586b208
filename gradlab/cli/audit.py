"""``gradlab audit``: check the derivations inside notebooks and scripts, as written.

Usage::

    gradlab audit notebook.ipynb [script.py ...]      # one table per document
    gradlab audit nb.ipynb --only LinearModel.backward
    gradlab audit nb.ipynb --json out.json            # or --json - for stdout
    gradlab audit nb.ipynb --annotate nb.audited.ipynb

THIS RUNS YOUR CODE: every code cell of the notebook (every statement of the script, or each
``# %%`` cell) is executed in order, in a fresh namespace in this process, as running the notebook
would -- audit only documents you would run yourself. Each cell has a time limit (--timeout);
plots are off (matplotlib's Agg backend, plt.show does nothing); a failing cell is reported and
the next one runs.

Pairs are found by name and signature (loss/grad, f/df, mse_cost/mse_gradient,
compute_cost/compute_gradient, forward/backward, a (loss, grad)-returning function, a class's
loss/grad methods, a layer's backward storing self.weight_grad with a loss class's gradient
method) or by a marker comment ``# gradlab: grad of NAME`` in or above the gradient's def.
Arguments come from the notebook's own variables and calls after the run, else from a small random
draw; the report says which. A numpy loss is traced with numpy rebound to jax.numpy; when it
cannot be (in-place writes, np.random), the lines are listed and the hand gradient is judged
against finite differences only, labelled so.

Exit status: 1 when any pair is wrong; else 2 when a document cannot be read; else 0.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "audit",
        help="run a notebook/script (your code!) and check every hand gradient it defines",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("documents", nargs="+", metavar="NOTEBOOK.ipynb|SCRIPT.py")
    p.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="check only this gradient (e.g. LinearModel.backward); repeatable",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per cell (default 30)")
    p.add_argument(
        "--pair-timeout", type=float, default=120.0, help="seconds per pair checked (default 120)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of numpy's generator and of draws")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="JSON to FILE (- stdout)")
    p.add_argument("--annotate", metavar="OUT.ipynb", help="write a copy with verdict cells")
    p.add_argument("--verbose", "-v", action="store_true", help="print each full check report")
    p.set_defaults(func=run)


def _annotate_path(template: str, doc: Path, many: bool) -> Path:
    if not many:
        return Path(template)
    out = Path(template)
    return (
        out / f"{doc.stem}.audited.ipynb"
        if out.is_dir()
        else out.with_name(f"{out.stem}.{doc.stem}{out.suffix}")
    )


def _clean(x):
    """JSON-safe: non-finite floats become "nan", "inf", "-inf"."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def run(args: argparse.Namespace) -> int:
    from gradlab.audit import AuditError, annotate, audit

    wrong = unreadable = False
    dumps = []
    to_stdout = args.json == "-"
    say = (lambda *a: print(*a, file=sys.stderr)) if to_stdout else print
    many = len(args.documents) > 1
    for path in args.documents:
        try:
            report = audit(
                path,
                only=args.only,
                timeout=args.timeout,
                pair_timeout=args.pair_timeout,
                seed=args.seed,
            )
        except AuditError as err:
            print(f"gradlab audit: error: {err}", file=sys.stderr)
            dumps.append({"path": path, "ok": False, "error": str(err)})
            unreadable = True
            continue
        say("\n".join(report.lines(verbose=args.verbose)))
        dumps.append(report.to_dict())
        wrong |= not report.ok
        if args.annotate:
            try:
                out = annotate(report, _annotate_path(args.annotate, Path(path), many))
                say(f"wrote {out}")
            except AuditError as err:
                print(f"gradlab audit: error: {err}", file=sys.stderr)
                unreadable = True
    if args.json:
        data = _clean(dumps[0] if len(dumps) == 1 else dumps)
        text = json.dumps(data, indent=2, default=str, allow_nan=False)
        if to_stdout:
            print(text)
        else:
            Path(args.json).write_text(text)
            say(f"wrote {args.json}")
    return 1 if wrong else (2 if unreadable else 0)
