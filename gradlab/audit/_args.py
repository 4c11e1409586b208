"""Arguments for a loss and its gradient: the notebook's own data first, a small draw otherwise.

For each parameter of the function, in order of preference:

1. a call of the function (or its pair) in a cell: ``loss(X, y, theta, lam=0.1)`` gives
   ``lam = 0.1``, and at top level ``X`` is the notebook's ``X``;
2. a notebook variable of the same name, as it is after every cell ran;
3. the parameter's default;
4. a draw: a small int for sizes (``input_dim``), a small positive float for coefficients
   (``lam``, ``l1_lambda``), a standard normal array for data and weights, its shape found by
   probing a few candidates (``X`` as ``(8, d)``, ``y`` as ``(8,)`` or ``(8, 1)``, ...) until the
   loss runs and returns a scalar.

Every value says where it came from (:class:`ArgSource`).
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import inspect
import itertools
import re
from collections.abc import Sequence

import numpy as np

from gradlab.audit._source import Source

N_ROWS = 8
INT_NAME = re.compile(
    r"^(n|m|k|d|p|h|dim|\w*_dim|dim_\w*|n_\w+|num_\w+|\w*_size|size|in_features|"
    r"out_features|\w*_units|units|degree|hidden)$"
)
FLOAT_NAME = re.compile(
    r"^(lam|lmbda|lmbd|lambda_?\w*|\w*_lambda|\w*_lam|lam_\w*|alpha|beta|gamma|eta|lr|"
    r"learning_rate|reg|\w*_reg|c|l1|l2|eps|epsilon|tau|sigma|rho|decay|weight_decay|"
    r"temperature|penalty|\w*_coef|kappa|delta|margin|scale)$",
    re.IGNORECASE,
)
DATA_NAME = re.compile(r"^(x|xs|x_\w+|\w*_x|inputs?|features?|data|a|xb|x_b|design)$", re.I)
TARGET_NAME = re.compile(r"^(y|ys|y_\w+|\w*_y|t|targets?|labels?|yb|truth)$", re.I)
BIAS_NAME = re.compile(r"^(b|bias|b\d|intercept|b_\w+|\w*_bias|theta0|w0)$", re.I)


class Origin(enum.Enum):
    CALL = "call in the notebook"
    NOTEBOOK = "notebook variable"
    DEFAULT = "default"
    DRAWN = "random draw"
    BUILT = "built by gradlab"


@dataclasses.dataclass(frozen=True)
class ArgSource:
    """Where one argument's value came from."""

    name: str
    origin: Origin
    detail: str
    value: float | int | None = None  # the value, when it is a number
    parts: tuple[ArgSource, ...] = ()  # an instance built by gradlab: its constructor's arguments

    def __str__(self) -> str:
        return f"{self.name}: {self.detail}"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "origin": self.origin.name.lower(),
            "detail": self.detail,
            "value": self.value,
            "parts": [p.to_dict() for p in self.parts],
        }


def describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if isinstance(value, (int, float, np.floating, np.integer)):
        return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)
    return type(value).__name__


def params_of(fn, skip_self: bool = False) -> list[inspect.Parameter]:
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return params[1:] if skip_self and params else params


def from_calls(
    src: Source, names: list[str], params: list[inspect.Parameter], namespace: dict
) -> dict[str, tuple[object, ArgSource]]:
    """Values the notebook passes to ``names`` at its call sites: number literals anywhere,
    names of notebook variables at top level (inside a def they are locals)."""
    found: dict[str, tuple[object, ArgSource]] = {}
    pnames = [p.name for p in params]
    for name in names:
        for site in src.call_sites(name):
            pairs = list(zip(pnames, site.node.args, strict=False))
            pairs += [(k.arg, k.value) for k in site.node.keywords if k.arg in pnames]
            for pname, expr in pairs:
                if pname in found:
                    continue
                where = f"{name}(...) at {site.cell.at(site.line)}"
                try:
                    value = ast.literal_eval(expr)
                except (ValueError, SyntaxError, TypeError):
                    value = None
                else:
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        found[pname] = (
                            value,
                            ArgSource(pname, Origin.CALL, f"{value!r} ({where})", value),
                        )
                    continue
                if site.top_level and isinstance(expr, ast.Name) and expr.id in namespace:
                    v = namespace[expr.id]
                    if _is_data(v):
                        detail = f"notebook's {expr.id} {describe(v)} (passed at {where})"
                        found[pname] = (v, ArgSource(pname, Origin.CALL, detail))
    return found


def _is_data(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float, np.integer, np.floating)):
        return True
    if isinstance(v, np.ndarray):
        return v.dtype.kind in "fiub"
    if isinstance(v, dict):
        return bool(v) and all(isinstance(x, np.ndarray) for x in v.values())
    return hasattr(v, "__dict__") and not callable(v)  # an instance (a model object)


DATA_FUNCTION = re.compile(
    r"^(generate|make|load|get|create|build|gen|sample|simulate)_?(toy_|synthetic_)?"
    r"(data|dataset|xy)$",
    re.I,
)


def from_data_functions(src: Source, namespace: dict, wanted: set[str]) -> dict:
    """Arrays the notebook's own data function returns, by the names it returns them under:
    ``def generate_data(n=50): ...; return X, y`` gives ``X`` and ``y`` (called with its
    defaults, numpy's global generator seeded)."""
    found: dict[str, tuple[object, ArgSource]] = {}
    for q, d in src.defs.items():
        fn = namespace.get(q)
        if d.cls or not DATA_FUNCTION.match(q) or not callable(fn):
            continue
        a = d.node.args
        if len(a.args) > len(a.defaults) or a.kwonlyargs and None in a.kw_defaults:
            continue
        rets = [n for n in ast.walk(d.node) if isinstance(n, ast.Return) and n.value is not None]
        if not rets or not isinstance(rets[-1].value, ast.Tuple):
            continue
        names = [e.id if isinstance(e, ast.Name) else None for e in rets[-1].value.elts]
        if not set(names) & wanted:
            continue
        state = np.random.get_state()  # noqa: NPY002 - the notebook's global generator
        np.random.seed(0)  # noqa: NPY002 - the notebook's data function may draw from it
        try:
            out = fn()
        except Exception:  # noqa: BLE001 - a data function that fails gives nothing
            continue
        finally:
            np.random.set_state(state)  # noqa: NPY002
        if not isinstance(out, tuple) or len(out) != len(names):
            continue
        for name, v in zip(names, out, strict=True):
            if name in wanted and name not in found and isinstance(v, np.ndarray):
                detail = f"{name} {describe(v)} returned by the notebook's {q}() ({d.where})"
                found[name] = (v, ArgSource(name, Origin.CALL, detail))
    return found


def resolve(
    src: Source,
    names: list[str],
    params: list[inspect.Parameter],
    namespace: dict,
    bound_in: dict,
) -> tuple[dict, dict[str, ArgSource], list[inspect.Parameter]]:
    """``(values, sources, missing)`` for ``params`` of the functions ``names`` (steps 1-3)."""
    calls = from_calls(src, names, params, namespace)
    values, sources, missing = {}, {}, []
    for p in params:
        if p.name in calls:
            values[p.name], sources[p.name] = calls[p.name]
        elif p.name in namespace and _is_data(namespace[p.name]):
            v = namespace[p.name]
            cell = bound_in.get(p.name)
            where = f", {cell.label}" if cell is not None else ""
            values[p.name] = v
            number = v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
            sources[p.name] = ArgSource(
                p.name, Origin.NOTEBOOK, f"notebook's {p.name} {describe(v)}{where}", number
            )
        elif p.default is not inspect.Parameter.empty:
            values[p.name] = p.default
            sources[p.name] = ArgSource(
                p.name,
                Origin.DEFAULT,
                f"default {p.default!r}",
                p.default if isinstance(p.default, (int, float)) else None,
            )
        else:
            missing.append(p)
    return values, sources, missing


def draw_scalar(name: str, rng: np.random.Generator):
    """A size or a coefficient by its name, or None when the name says neither."""
    low = name.lower()
    if INT_NAME.match(low):
        return 1 if "out" in low else 3
    if FLOAT_NAME.match(low):
        return float(np.round(rng.uniform(0.05, 0.5), 3))
    return None


def _shapes(name: str, dims: Sequence[int]) -> Sequence[tuple[int, ...]]:
    n = N_ROWS
    ds = dims or [3]
    if DATA_NAME.match(name):
        return [(n, d) for d in ds] + [(n,)]
    if TARGET_NAME.match(name):
        return [(n,), (n, 1)]
    if BIAS_NAME.match(name):
        return [(), (1,)]
    return [(d,) for d in ds] + [(d, 1) for d in ds] + [()] + [(n,)]


def draw(
    missing: list[inspect.Parameter],
    try_call,
    rng: np.random.Generator,
    dims: Sequence[int] = (),
    strict=None,
) -> tuple[dict, dict[str, ArgSource], str | None]:
    """Draw the ``missing`` parameters; array shapes are probed with ``try_call(values) -> bool``.

    With ``strict(values) -> bool`` (the rebound loss traced with rank promotion refused), shapes
    that run only through numpy's silent broadcasting (``(8,) - (3, 1)`` to ``(3, 8)``) are
    passed over while any shapes run without it.

    Returns:
      ``(values, sources, error)``: ``error`` says why no combination of shapes ran.
    """
    values, sources, arrays = {}, {}, []
    for p in missing:
        s = draw_scalar(p.name, rng)
        if s is not None:
            values[p.name] = s
            kind = "size" if isinstance(s, int) else "coefficient"
            sources[p.name] = ArgSource(p.name, Origin.DRAWN, f"{s!r} (drawn: a {kind})", s)
        else:
            arrays.append(p.name)
    if not arrays:
        return values, sources, None if try_call(values) else "the call fails with these values"
    options = [_shapes(a, list(dims)) for a in arrays]
    combos = list(itertools.islice(itertools.product(*options), 96))
    trials = []
    for combo in combos:
        trial = dict(values)
        for a, shape in zip(arrays, combo, strict=True):
            trial[a] = rng.standard_normal(shape) if shape else float(rng.standard_normal())
        trials.append(trial)
    passes = [lambda t: try_call(t) and strict(t)] if strict else []
    for accept in [*passes, try_call]:
        for combo, trial in zip(combos, trials, strict=True):
            if accept(trial):
                for a, shape in zip(arrays, combo, strict=True):
                    sources[a] = ArgSource(
                        a, Origin.DRAWN, f"standard normal {shape} (drawn: not in the notebook)"
                    )
                return trial, sources, None
    return (
        values,
        sources,
        f"no small random draw of {', '.join(arrays)} runs the loss to a scalar "
        f"(tried {len(combos)} shape combinations)",
    )
