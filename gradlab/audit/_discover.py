"""Find the loss/gradient pairs of a document by names, signatures and markers.

Four shapes of pair, each a :class:`PairKind`:

- two functions: ``loss``/``grad``, ``f``/``df``, ``mse_cost``/``mse_gradient``,
  ``compute_cost``/``compute_gradient``, ``forward``/``backward`` ... (a name stem shared once the
  loss words and gradient words are removed), or a marker ``# gradlab: grad of NAME`` in (or right
  above) the gradient's definition;
- one function returning ``(loss, grad)`` (its last return is a tuple naming a loss and gradients);
- a class with a loss method (``loss``, ``cost``, ``forward``, ``__call__``) and a gradient method
  that returns the gradient of parameters held on ``self``;
- a layer whose ``backward(upstream)`` stores ``self.<param>_grad`` (seed 001's ``LinearModel``),
  wired to a loss class with a gradient method (``Loss.__call__`` and ``Loss.get_loss_grad``) as
  a training step would: ``loss(y, model(X))``, ``model.backward(loss.get_loss_grad())``.

Markdown that derives a gradient with no code for it, and training loops computing their gradient
inline, are reported as ``no gradient to check``.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import re

from gradlab.audit._source import GRAD_NAME, Def, Source, gradient_math

GRAD_WORDS = {
    "grad",
    "grads",
    "gradient",
    "gradients",
    "derivative",
    "deriv",
    "jac",
    "jacobian",
    "backward",
    "prime",
}
LOSS_WORDS = ["loss", "cost", "objective", "obj", "nll", "energy", "risk", "f", "j", "forward"]
# names that plot, train or approximate: never a loss or a hand gradient
STOP_WORDS = set(
    "plot show draw print visualize visualise animate save train fit update step descent sgd "
    "optimize optimise history check test compare numerical numeric approx approximate finite "
    "fd autograd".split()
)
VERB_WORDS = {"compute", "get", "calc", "calculate", "eval", "evaluate", "my", "analytic"}
METHOD_LOSS = ("loss", "cost", "objective", "nll", "forward", "__call__", "compute_cost", "f")
METHOD_GRAD = ("grad", "gradient", "gradients", "backward", "compute_gradient", "df", "jacobian")
LOSS_GRAD_METHODS = ("get_loss_grad", "loss_grad", "grad", "gradient", "backward", "derivative")
LOSS_ELEMENT = re.compile(r"^(loss\w*|cost\w*|j|value|obj\w*|f|nll|l|total)$", re.IGNORECASE)


class PairKind(enum.Enum):
    FUNCTIONS = "functions"
    VALUE_AND_GRAD = "value-and-grad"
    METHODS = "methods"
    BACKPROP = "backprop"


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A loss/gradient pair found in the code; ``name`` is the gradient's qualname."""

    name: str
    kind: PairKind
    grad: Def
    loss: Def
    how: str
    loss_grad: Def | None = None  # BACKPROP: the loss class's gradient method

    @property
    def label(self) -> str:
        return f"{self.name} <- {self.loss.qualname}"


@dataclasses.dataclass(frozen=True)
class Discovery:
    candidates: tuple[Candidate, ...]
    errors: tuple[str, ...]  # markers naming nothing
    nothing: tuple[str, ...]  # "no gradient to check" explanations


def _words(name: str) -> list[str]:
    return [w for w in name.lower().split("_") if w]


def _stem(name: str, drop: set[str]) -> str:
    return "_".join(w for w in _words(name) if w not in drop and w not in VERB_WORDS)


def _stopped(name: str) -> bool:
    return any(w in STOP_WORDS for w in _words(name))


def _is_grad_name(name: str, defs) -> bool:
    ws = _words(name)
    if any(w in GRAD_WORDS for w in ws):
        return True
    return len(name) > 1 and name[0] == "d" and name[1:] in defs  # df for f, dJ for J


def _loss_rank(name: str) -> int:
    ws = _words(name)
    for r, w in enumerate(LOSS_WORDS):
        if w in ws:
            return r
    return len(LOSS_WORDS)


def _returns_value(d: Def) -> bool:
    return any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(d.node))


def _stores_grads(d: Def) -> bool:
    for n in ast.walk(d.node):
        if isinstance(n, (ast.Assign, ast.AugAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            for t in targets:
                if isinstance(t, ast.Attribute) and GRAD_NAME.match(t.attr):
                    return True
    return False


def tuple_return(d: Def) -> tuple[int, list[int]] | None:
    """``(loss position, gradient positions)`` when ``d`` returns ``(loss, grad...)``."""
    rets = [n for n in ast.walk(d.node) if isinstance(n, ast.Return) and n.value is not None]
    if not rets:
        return None
    val = max(rets, key=lambda n: n.lineno).value
    if not isinstance(val, ast.Tuple) or len(val.elts) < 2:
        return None
    names = [e.id if isinstance(e, ast.Name) else "" for e in val.elts]
    loss = [i for i, n in enumerate(names) if LOSS_ELEMENT.match(n)]
    grads = [i for i, n in enumerate(names) if n and GRAD_NAME.match(n)]
    if len(loss) == 1 and grads and loss[0] not in grads:
        return loss[0], grads
    return None


def _function_pairs(src: Source, taken: set[str]) -> list[Candidate]:
    top = {q: d for q, d in src.defs.items() if d.cls is None}
    out = []
    for q, g in top.items():
        if q in taken or not _is_grad_name(q, top) or _stopped(q):
            continue
        if len(q) > 1 and q[0] == "d" and q[1:] in top and not _is_grad_name(q[1:], top):
            out.append(Candidate(q, PairKind.FUNCTIONS, g, top[q[1:]], f"by name: {q[1:]}/{q}"))
            continue
        stem = _stem(q, GRAD_WORDS | set(LOSS_WORDS))
        losses = [
            d
            for p, d in top.items()
            if p != q
            and not _is_grad_name(p, top)
            and not _stopped(p)
            and _stem(p, set(LOSS_WORDS)) == stem
            and (_loss_rank(p) < len(LOSS_WORDS) or _stem(p, set()) == stem)
            and tuple_return(d) is None
        ]
        if not losses:
            continue
        gargs = [a.arg for a in g.node.args.args]
        best = min(
            losses,
            key=lambda d: ([a.arg for a in d.node.args.args] != gargs, _loss_rank(d.qualname)),
        )
        out.append(Candidate(q, PairKind.FUNCTIONS, g, best, f"by name: {best.qualname}/{q}"))
    return out


def _method(src: Source, cname: str, names) -> Def | None:
    return next((src.defs[f"{cname}.{m}"] for m in names if f"{cname}.{m}" in src.defs), None)


def _class_pairs(src: Source, taken: set[str]) -> tuple[list[Candidate], list[str]]:
    out, nothing = [], []
    loss_classes = {}
    for cname in src.classes:
        call, lg = _method(src, cname, METHOD_LOSS), _method(src, cname, LOSS_GRAD_METHODS)
        if call and lg and _returns_value(lg) and _returns_value(call):
            loss_classes[cname] = (call, lg)
    used = set()
    for cname in src.classes:
        grad = _method(src, cname, METHOD_GRAD)
        if grad is None or grad.qualname in taken or _returns_value(grad):
            continue
        if not _stores_grads(grad):
            continue
        others = [c for c in loss_classes if c != cname]
        if not others:
            nothing.append(
                f"{grad.qualname} ({grad.where}) stores gradients on self but no loss class "
                "with a gradient method (get_loss_grad/backward/grad) was found: no gradient "
                "to check"
            )
            continue
        call, lg = loss_classes[others[0]]
        used.add(others[0])
        how = f"backprop: {call.qualname}(y, {cname}(X)), {grad.qualname}({lg.qualname}())"
        out.append(Candidate(grad.qualname, PairKind.BACKPROP, grad, call, how, lg))
    for cname in src.classes:
        grad = _method(src, cname, METHOD_GRAD)
        if cname in used or grad is None or grad.qualname in taken or not _returns_value(grad):
            continue
        loss = _method(src, cname, [m for m in METHOD_LOSS if f"{cname}.{m}" != grad.qualname])
        if loss is not None:
            how = f"by name: methods {loss.qualname}/{grad.qualname}"
            out.append(Candidate(grad.qualname, PairKind.METHODS, grad, loss, how))
    return out, nothing


def discover(src: Source) -> Discovery:
    """Every pair the document's code shows, and why nothing was found where nothing was."""
    out: list[Candidate] = []
    errors: list[str] = []
    for d, loss_name in src.markers():
        scoped = f"{d.cls}.{loss_name}" if d.cls else loss_name
        loss = src.defs.get(scoped) or src.defs.get(loss_name)
        if loss is None:
            errors.append(
                f"{d.qualname} ({d.where}): marker names {loss_name!r}, which no cell defines"
            )
            continue
        kind = PairKind.METHODS if d.cls else PairKind.FUNCTIONS
        out.append(Candidate(d.qualname, kind, d, loss, f"marker: # gradlab: grad of {loss_name}"))
    taken = {c.name for c in out}
    for q, d in src.defs.items():
        if d.cls is None and q not in taken and tuple_return(d) is not None:
            out.append(Candidate(q, PairKind.VALUE_AND_GRAD, d, d, "returns (loss, grad)"))
    taken |= {c.name for c in out}
    out += _function_pairs(src, taken)
    taken |= {c.name for c in out}
    pairs, nothing = _class_pairs(src, taken)
    out += pairs
    nothing += _nothing(src, out)
    return Discovery(tuple(out), tuple(errors), tuple(nothing))


def _calls(d: Def, names: set[str]) -> bool:
    for n in ast.walk(d.node):
        if isinstance(n, ast.Call):
            f = n.func
            called = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
            if called in names:
                return True
    return False


def _nothing(src: Source, found: list[Candidate]) -> list[str]:
    """Why there is nothing (more) to check: gradients computed inline in a training loop, or
    derived in markdown with no code."""
    paired = {id(c.grad.node) for c in found} | {id(c.loss.node) for c in found}
    grad_names = {c.grad.qualname.split(".")[-1] for c in found}
    out = []
    for d in src.all_defs:
        if id(d.node) in paired or _calls(d, grad_names):
            continue
        inline = src.inline_gradients(d)
        if inline:
            line, text = inline[0]
            out.append(
                f"{d.qualname} ({d.cell.label}): gradient computed inline (line {line}: "
                f"`{text}`), no loss/gradient functions to check"
            )
    math_cells = gradient_math(src.doc)
    if math_cells and not found:
        out.append(
            f"gradient derived in markdown (cells {', '.join(map(str, math_cells))}) with no code "
            "that computes it"
        )
    return out or ([] if found else ["no loss/gradient pair in the code"])
