r"""``check_vjp``, ``check_jvp``, ``check_jacobian``: a vector function's derivative rule against
autodiff of the function with its custom rules removed, refereed by finite differences.

The driver: validate (``_vector_problem``), take finite differences once in float64
(``_vector`` eq. (1)), then judge each precision (the user's, and a float64 copy when the user's
is narrower) block by block (``_vector_judge``); fast mode probes with seeded cotangents and
tangents (``_vector`` eq. (2)) and reruns in full only the blocks that disagree. The report
(``_vector_report``) names each failure by rule, output leaf and index, input leaf and index.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.check import _compare, _rules, _vector, _vector_problem, _vector_report
from gradlab.check._complex import Span
from gradlab.check._report import DtypeVerdict, LeafReport
from gradlab.check._vector import Differences, Kind, Spec
from gradlab.check._vector_judge import BlockJudgement, conjugate_pairs, judge_block
from gradlab.check._vector_report import VectorReport
from gradlab.check._verdict import Finding, Verdict

MODES = ("fast", "full")
DEFAULT_BUDGET = 256 * 2**20


@dataclasses.dataclass(frozen=True)
class Options:
    """How to check: mode, tolerances, seed and directions, memory, what to list."""

    mode: str = "fast"
    rtol: float | None = None
    atol: float | None = None
    seed: tuple[int, ...] = (0,)
    directions: int = 2
    budget: int = DEFAULT_BUDGET
    n_worst: int = 3
    cotangents: Any = None  # fast mode: the user's cotangents (a pytree like f's output, or a list)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {self.mode!r}")
        if not isinstance(self.directions, int) or self.directions < 1:
            raise ValueError(f"directions must be a positive int; got {self.directions!r}")


@dataclasses.dataclass(frozen=True)
class Precision:
    """One pass: the spec and arguments in one dtype, with its tolerance."""

    spec: Spec
    args: tuple
    rtol: float
    eps: float


# ---- the finite-difference witness, computed once in float64 ----------------------------------


def _x0(p: Precision) -> np.ndarray:
    from gradlab.check import _tree

    return np.asarray(p.spec.inputs.ravel(_tree.get_params(p.args, p.spec.argnums)))


def columns(wide: Precision, cols: np.ndarray) -> Differences:
    """Richardson columns ``R[:, cols]`` of the Jacobian (unit directions, per-column steps)."""
    h = _vector.column_steps(_x0(wide), wide.spec.inputs.dtype)[cols]
    return _vector.differences(wide.spec, wide.args, cols.astype(np.int32), h)


def along(wide: Precision, T: np.ndarray) -> Differences:
    """Richardson derivatives ``J t`` along the rows of ``T``: ``(m, k)``."""
    h = np.full(T.shape[0], _vector.direction_step(_x0(wide), wide.spec.inputs.dtype))
    return _vector.differences(wide.spec, wide.args, T, h)


# ---- one precision -------------------------------------------------------------------------------


def _block(p: Precision, out_idx: np.ndarray, in_idx: np.ndarray) -> _vector.Block:
    prog = _vector.block_program(p.spec)
    blk = prog(p.args, jnp.asarray(out_idx, jnp.int32), jnp.asarray(in_idx, jnp.int32))
    return jax.tree.map(lambda a: np.asarray(a, np.float64), blk)


def _check_primal(spec: Spec, f0: np.ndarray, primal: np.ndarray, rtol: float) -> None:
    """A JVP rule's primal output must be ``f(*args)`` (the same numbers, to rounding)."""
    if spec.kind is not Kind.JVP:
        return
    scale = _compare.finite_max(f0)
    bad = ~(np.abs(primal - f0) <= rtol * (np.abs(f0) + scale))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        leaf, index, part = spec.outputs.locate(i)
        raise ValueError(
            f"jvp(primals, tangents)[0] is out of step with f(*args): at {leaf.path}"
            f"{list(index)}{'.' + part if part else ''} the rule returns {primal[i]!r} but f "
            f"returns {f0[i]!r} ({int(bad.sum())} element(s) differ); the rule must return "
            "f's own output as its first value"
        )


def _value_verdict(f0: np.ndarray, g0: np.ndarray, rtol: float) -> list[Verdict]:
    scale = _compare.finite_max(f0, g0)
    bad = ~(np.abs(f0 - g0) <= rtol * (np.abs(g0) + scale))
    if not bad.any():
        return []
    return [
        Verdict(
            Finding.VALUE_MISMATCH,
            "out",
            int(bad.sum()),
            int(bad.size),
            detail="f and its reference (f with the custom rules removed) give different "
            f"values: max |f - reference| = {float(np.nanmax(np.abs(f0 - g0))):.3g}",
        )
    ]


def _judge_all(p: Precision, blk, fd: Differences | None, rows, cols, opts) -> list:
    """Judge every (output span, input span) block inside the computed rows and columns."""
    out = []
    for o in p.spec.outputs.spans():
        ro = np.flatnonzero((rows >= o.start) & (rows < o.stop))
        if ro.size == 0:
            continue
        for i in p.spec.inputs.spans():
            ci = np.flatnonzero((cols >= i.start) & (cols < i.stop))
            if ci.size == 0:
                continue
            sub = np.ix_(ro, ci)
            ref = None if fd is None else (fd.richardson[sub], fd.error[sub])
            eps = max(p.eps, float(np.finfo(np.float64).eps))
            out.append(judge_block(o, i, blk.hand[sub], blk.auto[sub], ref, p.rtol, opts.atol, eps))
    return out


def _with_conjugates(p: Precision, blocks: list[BlockJudgement], opts) -> list[BlockJudgement]:
    in_imag = _imag_map(p.spec.inputs)
    out_imag = _imag_map(p.spec.outputs)
    conj = conjugate_pairs(blocks, p.rtol, opts.atol, in_imag, out_imag)
    return [b._replace(conjugate=j in conj) for j, b in enumerate(blocks)]


def _imag_map(lay) -> dict[str, bool]:
    out = {}
    for leaf in lay.leaves:
        if leaf.complex:
            out[leaf.path + ".real"] = False
            out[leaf.path + ".imag"] = True
    return out


def full_pass(p: Precision, fd: Differences, opts: Options, rule: str) -> VectorReport:
    """Every Jacobian entry from each witness; the float64 ``fd`` is shared by both passes."""
    m, n = p.spec.outputs.size, p.spec.inputs.size
    rows, cols = np.arange(m), np.arange(n)
    blk = _block(p, rows, cols)
    f0, g0, primal = np.asarray(blk.f0), np.asarray(blk.g0), np.asarray(blk.hand_primal)
    _check_primal(p.spec, f0, primal, p.rtol)
    blocks = _with_conjugates(p, _judge_all(p, blk, fd, rows, cols, opts), opts)
    extra = _value_verdict(f0, g0, p.rtol)
    return _assemble(p, blocks, [], extra, opts, rule, "every entry")


# ---- fast mode -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def directions(lay, k: int, seed: tuple[int, ...], salt: int) -> np.ndarray:
    """``k`` seeded Gaussian rows per span of ``lay``, each zero outside its span (cached:
    read-only)."""
    spans = lay.spans()
    V = np.zeros((k * len(spans), lay.size))
    for pos, s in enumerate(spans):
        rng = np.random.default_rng([*seed, salt, pos])
        V[pos * k : (pos + 1) * k, s.slice] = rng.standard_normal((k, s.stop - s.start))
    V.setflags(write=False)
    return V


def given_cotangents(spec: Spec, cotangents) -> np.ndarray | None:
    """The user's cotangents as flat rows ``(n, m)`` (``_complex`` eq. (1)); their tree and
    shapes must be ``f``'s output's."""
    if cotangents is None:
        return None
    if spec.kind is Kind.JVP:
        raise ValueError("cotangents apply to VJP rules (check_vjp), not to a JVP rule")
    items = cotangents if isinstance(cotangents, list) else [cotangents]
    if not items:
        raise ValueError("cotangents is an empty list; give at least one cotangent")
    out = spec.outputs
    want = out.treedef.unflatten([jax.ShapeDtypeStruct(x.shape, x.dtype) for x in out.leaves])
    rows = []
    for j, ct in enumerate(items):
        _vector_problem.check_cotangents(ct, want, f"cotangents[{j}]" if len(items) > 1 else "")
        rows.append(np.asarray(out.ravel_cot(ct), np.float64))
    return np.stack(rows)


def fast_pass(p: Precision, wide: Precision, opts: Options, rule: str) -> VectorReport:
    """Probe every block with ``k`` cotangents and tangents; rerun failing blocks in full."""
    k = opts.directions
    given = given_cotangents(p.spec, opts.cotangents)
    U = directions(p.spec.outputs, k, opts.seed, 0) if given is None else given
    T = directions(p.spec.inputs, k, opts.seed, 1)
    dt = p.spec.outputs.dtype
    Uj, Tj = jnp.asarray(U, dt), jnp.asarray(T, dt)
    if wide is p:  # one program: probes and finite differences in the same precision
        h = np.full(T.shape[0], _vector.direction_step(_x0(p), p.spec.inputs.dtype))
        pr, vals = _vector.probe_fd_program(p.spec)(p.args, Uj, Tj, jnp.asarray(h, dt))
        fd_t = _vector.richardson(vals, pr.f0, h, p.eps)
    else:
        pr = _vector.probe_program(p.spec)(p.args, Uj, Tj)
        fd_t = along(wide, T)
    pr = jax.tree.map(lambda a: None if a is None else np.asarray(a, np.float64), pr)
    _check_primal(p.spec, pr.f0, pr.hand_primal, p.rtol)
    spans = p.spec.outputs.spans()
    probe_outs: list[tuple[int | None, Span]] = list(enumerate(spans))
    if given is not None:  # every given cotangent spans all outputs: one pseudo output span
        probe_outs = [(None, Span("cotangents", (len(U),), 0, p.spec.outputs.size))]
    blocks, reruns = [], []
    for oi, o in probe_outs:
        for ii, i in enumerate(p.spec.inputs.spans()):
            probe = _probe_block(p, pr, fd_t, (oi, o), (ii, i), opts)
            if probe.masks.ok.all():
                blocks.append(probe)
                continue
            reruns.append(Verdict(Finding.FAST_RERUN, f"{o.path} wrt {i.path}"))
            for out_span in spans if oi is None else [o]:
                blocks += _rerun_block(p, wide, out_span, i, opts)
    blocks = _with_conjugates(p, blocks, opts)
    extra = _value_verdict(pr.f0, pr.g0, p.rtol)
    how = f"{len(U)} given cotangents" if given is not None else f"{k} random directions"
    return _assemble(p, blocks, reruns, extra, opts, rule, how)


def _rerun_block(p: Precision, wide: Precision, o: Span, i: Span, opts) -> list:
    """Every entry of the block ``d o / d i``, with its finite-difference columns."""
    rows, cols = np.arange(o.start, o.stop), np.arange(i.start, i.stop)
    blk = _block(p, rows, cols)
    fd = columns(wide, cols)
    fd = Differences(fd.richardson[rows], fd.error[rows])
    return _judge_all(p, blk, fd, rows, cols, opts)


def _probe_block(p, pr, fd_t, out, inp, opts) -> BlockJudgement:
    """Fast mode, one block: hand and autodiff along the probes of that block.

    VJP-type rules: rows ``u J`` restricted to the input span (``k x |I|``). JVP rules: columns
    ``J t`` restricted to the output span (``k x |O|``), refereed by finite differences along
    ``t``. Both are entries of ``J`` in a random basis: a wrong entry shows in every probe.
    """
    k = opts.directions
    (oi, o), (ii, i) = out, inp
    ro = slice(None) if oi is None else slice(oi * k, (oi + 1) * k)
    ri = slice(ii * k, (ii + 1) * k)
    eps = max(p.eps, float(np.finfo(np.float64).eps))
    if pr.hand_cols is not None:
        hand = pr.hand_cols[ri][:, o.slice]
        auto = pr.auto_cols[ri][:, o.slice]
        fd = (fd_t.richardson[o.slice, ri].T, fd_t.error[o.slice, ri].T)
    else:
        hand = pr.hand_rows[ro][:, i.slice]
        auto = pr.auto_rows[ro][:, i.slice]
        fd = None
    return judge_block(o, i, hand, auto, fd, p.rtol, opts.atol, eps)


# ---- the report ---------------------------------------------------------------------------


def _assemble(p, blocks, reruns, extra, opts, rule, checked) -> VectorReport:
    leaves: list[LeafReport] = []
    verdicts: list[Verdict] = list(extra)
    locations = []
    for b in blocks:
        probe = checked != "every entry" and b.masks.ok.all()
        leaves.append(_vector_report.leaf_report(b, opts.n_worst, checked, probe))
        v, loc = _vector_report.block_verdicts(b, rule)
        verdicts += v
        locations += loc
    verdicts += reruns
    ok = not any(v.failing for v in verdicts)
    total = sum(int(b.masks.ok.size) for b in blocks)
    if ok:
        verdicts.insert(
            0,
            Verdict(
                Finding.OK,
                count=total,
                detail=f"checked ({checked}): the hand rule equals autodiff of the function",
            ),
        )
    return VectorReport(
        ok=ok,
        mode=opts.mode,
        dtype=str(p.spec.inputs.dtype),
        rtol=p.rtol,
        atol=opts.atol,
        hand_witness="traced with jax.jit",
        leaves=tuple(leaves),
        verdicts=tuple(verdicts),
        fd_agree=(
            sum(int(b.masks.fd_agree.sum()) for b in blocks if b.fd is not None),
            sum(int(b.masks.ok.size) for b in blocks if b.fd is not None),
        ),
        kind=p.spec.kind.value,
        rule=rule,
        locations=tuple(locations),
        title=f"check_{p.spec.kind.value.replace(' ', '_')}",
    )


# ---- the driver ---------------------------------------------------------------------------


def _precision(spec_args, rtol) -> Precision:
    spec, args = spec_args
    dtype = np.result_type(spec.inputs.dtype, spec.outputs.dtype)
    eps = float(np.finfo(dtype).eps)
    return Precision(spec, args, _compare.default_rtol(dtype) if rtol is None else rtol, eps)


@dataclasses.dataclass(frozen=True)
class Copy:
    """The float64 copy of a check, where it is not ``f`` on cast arguments (an audited rule
    site is re-traced in float64: its equation is typed)."""

    f: Callable
    hand: Callable | None
    reference: Callable
    args: tuple


def run(
    kind: Kind,
    f: Callable,
    hand: Callable | None,
    args: tuple,
    argnums: Any,
    reference: Callable | None,
    opts: Options,
    rule: str = "",
    copy: Copy | None = None,
) -> VectorReport:
    """Check one rule in the user's precision and, when narrower, in a float64 copy."""
    if not jax.config.read("jax_enable_x64"):
        with jax.enable_x64(True):
            return run(kind, f, hand, args, argnums, reference, opts, rule, copy)
    reference = reference or _rules.stripped(f)
    spec = _build(f, hand, kind, args, argnums, reference, opts)
    user = _precision((spec, tuple(args)), opts.rtol)
    rule = rule or getattr(hand, "__name__", "") or ""
    if user.eps <= np.finfo(np.float64).eps:
        return _pass(user, user, opts, rule)
    if copy is None:
        copy = Copy(f, hand, reference, _vector_problem.wide_args(tuple(args), spec.argnums))
    wspec = _build(copy.f, copy.hand, kind, copy.args, argnums, copy.reference, opts)
    wide = _precision((wspec, copy.args), None)
    return _with_copy(_pass(user, wide, opts, rule), _pass(wide, wide, opts, rule), user)


def _signature(args: tuple):
    """The abstract arguments: arrays as shape/dtype structs, other leaves as they are (hashable
    when the check can be cached: validation is then traced once per signature)."""
    leaves, treedef = jax.tree.flatten(args)
    structs = tuple(
        jax.ShapeDtypeStruct(np.shape(x), x.dtype) if hasattr(x, "dtype") else x for x in leaves
    )
    return treedef, structs


@functools.lru_cache(maxsize=256)
def _cached_spec(f, hand, kind, argnums, reference, budget, signature) -> Spec:
    treedef, structs = signature
    return _validated(
        f, hand, kind, jax.tree.unflatten(treedef, structs), argnums, reference, budget
    )


def _validated(f, hand, kind, args, argnums, reference, budget) -> Spec:
    return _vector_problem.spec(f, hand, kind, tuple(args), argnums, reference, budget)


def _build(f, hand, kind, args, argnums, reference, opts) -> Spec:
    """The validated :class:`Spec` (cached per function, rule and abstract arguments)."""
    try:
        signature = _signature(tuple(args))
        hash((f, hand, reference, argnums, signature))
    except TypeError:
        signature = None
    try:
        if signature is None:
            return _validated(f, hand, kind, args, argnums, reference, opts.budget)
        argnums = tuple(argnums) if isinstance(argnums, list) else argnums
        return _cached_spec(f, hand, kind, argnums, reference, opts.budget, signature)
    except jax.errors.TracerArrayConversionError as err:
        raise TypeError(
            f"the hand {kind.value} must be traceable by JAX (it is traced with jax.jit and "
            f"vmap); it converted a tracer to numpy: {str(err).splitlines()[0]}"
        ) from err


def _pass(p: Precision, wide: Precision, opts: Options, rule: str) -> VectorReport:
    if opts.mode == "full":
        fd = columns(wide, np.arange(wide.spec.inputs.size))
        return full_pass(p, fd, opts, rule)
    return fast_pass(p, wide, opts, rule)


def _with_copy(one: VectorReport, copy: VectorReport, user: Precision) -> VectorReport:
    dtype = user.spec.inputs.dtype
    if copy.ok and not one.ok:
        summary = Verdict(
            Finding.PRECISION_ONLY,
            detail=(
                f"the float64 copy passes but {dtype} does not at rtol {user.rtol:.2g}: the rule "
                f"loses accuracy in {dtype}, it is not wrong"
            ),
        )
    elif not copy.ok:
        summary = Verdict(
            Finding.DERIVATION_ERROR,
            detail=("the float64 copy fails too, so it is not a precision issue"),
        )
    else:
        summary = Verdict(
            Finding.OK,
            count=one.verdicts[0].count,
            detail=f"checked in {dtype} and in the float64 copy",
        )
    dtypes = (
        DtypeVerdict(f"{dtype} (your dtype, rtol {user.rtol:.2g})", one.ok, one.verdicts[0]),
        DtypeVerdict(f"float64 copy (rtol {copy.rtol:.2g})", copy.ok, copy.verdicts[0]),
    )
    return dataclasses.replace(
        one,
        ok=one.ok and copy.ok,
        verdicts=(summary, *one.verdicts),
        dtypes=dtypes,
        float64_copy=copy,
    )
