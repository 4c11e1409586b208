"""``check_numpy(loss, grad, *args)``: :func:`gradlab.check_grad` for a loss written with numpy.

The pre-processing layer of ``gradlab audit`` for one loss given as a Python function: the loss
is traced with ``numpy`` rebound to ``jax.numpy`` in its globals (and in the functions of its
module it calls), the rebound value checked against the numpy value; if it traces, the three
witnesses judge; if not (in-place writes, ``np.random``), the lines are listed and the hand
gradient is judged against finite differences only, labelled so. ``gradlab check`` can hand a
loss that raises ``TracerArrayConversionError`` here.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path

import numpy as np

from gradlab.audit._args import ArgSource, Origin
from gradlab.audit._discover import Candidate, PairKind
from gradlab.audit._document import Cell, DocKind, Document, load
from gradlab.audit._judge import PairResult, judge
from gradlab.audit._numpy import Rebound, numpy_rules
from gradlab.audit._problem import Problem, copy_data, float_array, layout_of
from gradlab.audit._source import Def, Source


def _source_of(fn) -> tuple[Source, Def]:
    """The parsed module of ``fn`` and ``fn``'s definition in it (a one-cell stand-in when its
    source file cannot be read: then nothing it calls is inspected)."""
    code = fn.__code__
    try:
        path = inspect.getsourcefile(fn)
        src = Source(load(path)) if path and Path(path).suffix == ".py" else None
    except Exception:  # noqa: BLE001 - no readable module: fall back to the function alone
        src = None
    if src is not None:
        for d in src.all_defs:
            first = min([d.node.lineno] + [x.lineno for x in d.node.decorator_list])
            if first == code.co_firstlineno and d.node.name == fn.__name__:
                return src, d
    try:
        text = textwrap.dedent(inspect.getsource(fn))
        ast.parse(text)
    except (OSError, TypeError, SyntaxError):
        text = ""
    cell = Cell(0, text)
    src = Source(Document(Path(code.co_filename), DocKind.SCRIPT, (cell,)))
    found = src.defs.get(fn.__name__)
    if found is not None:
        return src, Def(fn.__qualname__, cell, found.node)
    stub = ast.parse(f"def f{fn.__code__.co_argcount}(*args):\n    pass").body[0]
    assert isinstance(stub, ast.FunctionDef)
    return src, Def(fn.__qualname__, cell, stub)


def _params(loss, args: tuple, argnums: int) -> tuple[dict, str | None, str]:
    """``(params, dict key or None, argument name)``: what ``args[argnums]`` holds."""
    x = args[argnums]
    names = list(inspect.signature(loss).parameters)
    name = names[argnums] if argnums < len(names) else f"args[{argnums}]"
    if isinstance(x, dict):
        return {k: np.asarray(v, np.float64) for k, v in x.items()}, name, name
    arr = float_array(np.asarray(x)) if np.ndim(x) or isinstance(x, float) else float_array(x)
    if arr is None:
        raise TypeError(f"args[{argnums}] ({name}) must hold floats; got {np.asarray(x).dtype}")
    return {name: arr}, None, name


def check_numpy(loss, grad, *args, argnums: int = 0, terms: dict | None = None) -> PairResult:
    """Check ``grad`` against a ``loss`` written with numpy, as ``gradlab audit`` does.

    Args:
      loss: ``loss(*args)``, numpy code (jax code works too: nothing is rebound then).
      grad: ``grad(*args)``, the hand gradient of ``args[argnums]`` (same structure).
      *args: the arguments.
      argnums: which argument is differentiated (one).
      terms: ``{name: term(*args)}`` summing to ``loss`` (numpy too), for blame.

    Returns:
      A :class:`~gradlab.audit.PairResult`: ``.verdict``, ``.witnesses``, ``.report``.

    Examples:
      >>> import numpy as np
      >>> r = check_numpy(lambda w: np.sum(w ** 3), lambda w: 3 * w ** 2, np.arange(3.0))
      >>> r.verdict.value, r.witnesses.value
      ('ok', 'hand, autodiff, fd')
    """
    src, d_loss = _source_of(loss)
    _, d_grad = _source_of(grad)
    files = {loss.__code__.co_filename} | {t.__code__.co_filename for t in (terms or {}).values()}
    rebound = Rebound(loss.__globals__, files)
    params, key, name = _params(loss, args, argnums)

    def put(p):
        new = dict(p) if key else p[name]
        return tuple(new if i == argnums else copy_data({0: a})[0] for i, a in enumerate(args))

    out = grad(*put(params))
    layout = layout_of(d_grad.qualname, out, params)
    traced = rebound.function(loss)
    traced_terms = {n: rebound.function(t) for n, t in (terms or {}).items()}
    c = Candidate(d_grad.qualname, PairKind.FUNCTIONS, d_grad, d_loss, "given to check_numpy")
    problem = Problem(
        c,
        params,
        lambda p: loss(*put(p)),
        lambda p: layout.to_dict(d_grad.qualname, grad(*put(p))),
        lambda p: traced(*put(p)),
        {
            n: (lambda p, t=t: t(*put(p)), lambda p, t=traced_terms[n]: t(*put(p)))
            for n, t in (terms or {}).items()
        },
        (ArgSource(name, Origin.BUILT, f"args[{argnums}], as given"),),
        (),
        rebound,
    )
    with numpy_rules():
        return judge(problem, src)
