r"""``search_grad``: hand against autodiff over thousands of inputs, the worst one shrunk.

A single point is a weak test of a branchy derivation: a Huber gradient wrong only past its
threshold, a logsumexp without the max shift (finite until a logit passes ~88 in float32), an
edge bin, an entropy near the boundary. ``search_grad`` draws ``n`` inputs from
``sampler(key)`` and runs hand against autodiff on all of them as lanes of one
``jit(lax.map(vmap(...)))`` program, chunked so that ``memory_budget`` bytes hold one chunk
(the bytes of one lane are XLA's own count for the compiled single-lane program). Each lane is
screened by ``_lanes`` eq. (1) at :math:`2^{12}\varepsilon` (machine precision of the input
dtype, scaled to the lane's largest gradient entry); the lanes that fail are refereed by finite
differences at their worst elements (kinks and float32 precision loss are named, not counted as
bugs), the worst confirmed failure is shrunk (``_shrink`` eq. (1)) and checked by
:func:`~gradlab.check_grad` with all three witnesses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from gradlab.check import _compare, _lanes, _samplers, _shrink, _tree, _witnesses
from gradlab.check._lanes import Outcome

DEFAULT_BUDGET = 256 * 2**20
_EPS64 = float(np.finfo(np.float64).eps)
TOP_K = 4  # elements refereed per failing lane
MAX_REFEREED = 256  # failing lanes refereed (the worst by ratio)
MAX_BLOCK = 1024  # lanes per screen call (fewer when the memory budget says so)
WITNESS_BLOCK = 32  # lanes per referee call


@dataclasses.dataclass(frozen=True)
class Counterexample:
    """One failing input: its arguments (host arrays), outcome and worst element's witnesses."""

    args: tuple
    outcome: Outcome
    ratio: float
    where: str
    hand: float
    autodiff: float
    fd: float

    def to_dict(self) -> dict[str, Any]:
        num = lambda x: x if np.isfinite(x) else str(x)  # noqa: E731
        return {
            "outcome": self.outcome.name,
            "ratio": num(self.ratio),
            "where": self.where,
            "hand": num(self.hand),
            "autodiff": num(self.autodiff),
            "fd": num(self.fd),
            "args": jax.tree.map(lambda x: np.asarray(x).tolist(), self.args),
        }

    def __str__(self) -> str:
        args = jax.tree.map(lambda x: np.asarray(x).tolist(), self.args)
        return (
            f"{self.outcome.value}; at {self.where}: hand {self.hand:.6g}, autodiff "
            f"{self.autodiff:.6g}, fd {self.fd:.6g} (ratio {self.ratio:.3g} of the tolerance)\n"
            f"    args = {args}"
        )


@dataclasses.dataclass(frozen=True)
class SearchReport:
    """What ``search_grad`` found over ``n`` inputs."""

    ok: bool
    n: int
    dtype: str
    rtol: float
    out_of_domain: int
    disagree: int
    refereed: int
    counts: tuple[tuple[Outcome, int], ...]
    worst: Counterexample | None
    shrunk: Counterexample | None
    shrink_rounds: int
    report: Any  # the GradReport of check_grad at the shrunk input, or None
    seconds: float

    @property
    def inputs_per_second(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        """One line: ok or the outcome of the worst input."""
        if self.ok:
            named = ", ".join(f"{c} {o.name.lower()}" for o, c in self.counts if c)
            return f"ok: {self.n} inputs" + (f" ({named}: not bugs)" if named else "")
        return f"FAIL: {self.n - self.out_of_domain - self.disagree} of {self.n} pass; worst: " + (
            self.worst.outcome.value if self.worst else "unrefereed disagreement"
        )

    def __str__(self) -> str:
        lines = [
            f"gradlab search_grad: {'ok' if self.ok else 'FAIL'}  ({self.n} inputs, {self.dtype}, "
            f"rtol {self.rtol:.2e}, {self.inputs_per_second:.0f} inputs/s)",
            f"  hand and autodiff disagree on {self.disagree} input(s); {self.out_of_domain} "
            f"outside the loss's domain (non-finite loss); {self.refereed} refereed by finite "
            "differences",
        ]
        lines += [f"  {o.name.lower()}: {c}" for o, c in self.counts if c]
        if self.worst is not None:
            lines.append(f"- worst input: {self.worst}")
        if self.shrunk is not None:
            lines.append(f"- shrunk in {self.shrink_rounds} round(s): {self.shrunk}")
        if self.report is not None:
            lines.append("- three witnesses at the shrunk input:")
            lines += ["    " + line for line in str(self.report).splitlines()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["counts"] = {o.name: c for o, c in self.counts}
        for name in ("worst", "shrunk"):
            out[name] = None if out[name] is None else out[name].to_dict()
        out["report"] = None if self.report is None else self.report.to_dict()
        out["inputs_per_second"] = self.inputs_per_second
        return out


class _Programs:
    """The jitted lane programs of one search, each compiled for one block size."""

    def __init__(self, loss, grad, sampler, argnums, rtol: float, k: int):
        self.sampler = jax.jit(jax.vmap(sampler))
        self.screen = jax.jit(jax.vmap(_lanes.screen(loss, grad, argnums, rtol, k)))
        self.witness = jax.jit(jax.vmap(_lanes.witness(loss, grad, argnums, np.dtype("float64"))))


@functools.lru_cache(maxsize=32)
def _programs(loss, grad, sampler, argnums, rtol: float, k: int) -> _Programs:
    """The programs of one (loss, grad, sampler): a second search with them compiles nothing."""
    return _Programs(loss, grad, sampler, argnums, rtol, k)


def lane_bytes(lane: Callable, template: tuple) -> int:
    """Bytes one lane holds at most: every value of its jaxpr (arguments, temporaries, outputs)
    alive at once, an upper bound (XLA fuses and reuses buffers); found by tracing, no compile."""
    closed = jax.make_jaxpr(lane)(template)

    def nbytes(aval) -> int:
        shape = getattr(aval, "shape", None)
        if shape is None or jnp.issubdtype(aval.dtype, jax.dtypes.prng_key):
            return 8
        return int(np.prod(shape, dtype=np.int64)) * np.dtype(aval.dtype).itemsize

    def walk(jaxpr) -> int:
        total = sum(nbytes(v.aval) for v in jaxpr.invars)
        for eqn in jaxpr.eqns:
            total += sum(nbytes(v.aval) for v in eqn.outvars)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                total += walk(sub)
        return total

    return max(1, walk(closed.jaxpr))


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
    return int(value)


def _host(tree):
    return jax.tree.map(np.asarray, tree)


def _take(tree, sel: np.ndarray | int):
    """Lanes ``sel`` of a batched pytree (host or device)."""
    return jax.tree.map(lambda x: x[sel], tree)


def _stack(inputs: list[tuple], sel: np.ndarray):
    """The inputs ``sel`` stacked along a new leading (lane) axis."""
    return jax.tree.map(lambda *xs: jnp.asarray(np.stack(xs)), *[inputs[i] for i in sel])


def _in_blocks(fn, n: int, size: int):
    """``fn(sel)`` over ``range(n)`` in blocks of exactly ``size`` indices (the last padded with
    its first index: one compiled shape), the outputs cut to ``n`` lanes and concatenated."""
    outs = []
    for start in range(0, n, size):
        sel = np.arange(start, min(n, start + size))
        pad = np.concatenate([sel, np.full(size - sel.size, sel[0])])
        outs.append(jax.tree.map(lambda x, m=sel.size: np.asarray(x)[:m], fn(pad)))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)


class _Search:
    """One search: the validated problem, its programs, and the referee of failing lanes."""

    def __init__(self, loss, grad, sampler, template, argnums, rtol, budget):
        params = _tree.get_params(template, argnums)
        self.leaves = _tree.check_params(params, argnums)
        self.dtype = np.dtype(jnp.result_type(*[leaf.dtype for leaf in self.leaves]))
        self.rtol = _compare.default_rtol(self.dtype) if rtol is None else float(rtol)
        self.loss, self.argnums = loss, argnums
        self.k = min(TOP_K, sum(leaf.size for leaf in self.leaves))
        per_lane = lane_bytes(_lanes.screen(loss, grad, argnums, self.rtol, self.k), template)
        if budget < per_lane:
            raise ValueError(
                f"memory_budget={budget} bytes is too small for one lane: one input of this "
                f"loss holds up to {per_lane} bytes (arguments, both gradients, temporaries)"
            )
        self.block = int(min(MAX_BLOCK, budget // per_lane))
        self.wblock = min(WITNESS_BLOCK, self.block)
        self.programs = _programs(loss, grad, sampler, argnums, self.rtol, self.k)
        self.offsets = np.cumsum([0] + [leaf.size for leaf in self.leaves])

    def where(self, flat: int) -> str:
        pos = int(np.searchsorted(self.offsets, flat, side="right") - 1)
        leaf = self.leaves[pos]
        path = leaf.path
        if not path.startswith("args["):
            path = _tree.arg_name(self.argnums) + path
        return f"{path}{list(_tree.index_of(flat - self.offsets[pos], leaf.shape))}"

    def screen(self, batch) -> _lanes.Screen:
        return _lanes.Screen(*_host(self.programs.screen(batch)))

    def referee(self, batch, top, top_ratio) -> tuple[np.ndarray, _lanes.Witness]:
        """Outcome index per lane and element (``_lanes.classify``), and the witnesses."""
        w = _lanes.Witness(*_host(self.programs.witness(batch, jnp.asarray(top))))
        return _lanes.classify(w, top_ratio, self.dtype, np.dtype("float64")), w

    def judge(self, inputs: list[tuple]) -> tuple[_lanes.Screen, np.ndarray]:
        """Screen every input, referee those that fail: ``(screen, lane outcome code)``, with
        ``len(SEVERITY)`` (no outcome) for lanes that pass or are out of the domain."""
        scr = _in_blocks(lambda sel: self.screen(_stack(inputs, sel)), len(inputs), self.block)
        code = np.full(len(inputs), len(_lanes.SEVERITY))
        fail = np.flatnonzero(scr.finite & (scr.ratio > 1))
        if fail.size:

            def block(sel):
                lane = fail[sel]
                per, _ = self.referee(_stack(inputs, lane), scr.top[lane], scr.top_ratio[lane])
                return per

            code[fail] = _in_blocks(block, fail.size, self.wblock).min(axis=1)
        return scr, code

    def counterexample(self, args) -> Counterexample:
        """The record of one failing input: screened and refereed alone."""
        sel = np.zeros(self.wblock, int)
        scr = _in_blocks(lambda s: self.screen(_stack([args], s)), 1, self.block)
        per, w = self.referee(_stack([args], sel), scr.top[sel], scr.top_ratio[sel])
        j = int(np.argmin(per[0]))  # the most severe element
        values, h, f0 = np.asarray(w.values), np.asarray(w.h), np.asarray(w.f0)  # host already
        fd = _lanes.fd_rows(values[0, j][None], h[0, j][None], f0[:1], _EPS64)
        return Counterexample(
            _host(args),
            _lanes.SEVERITY[per[0, j]],
            float(scr.ratio[0]),
            self.where(int(scr.top[0, j])),
            float(w.hand[0, j]),
            float(w.auto[0, j]),
            float(fd.richardson()[0][0]),
        )

    def in_domain(self, args) -> bool:
        """The loss evaluated eagerly (its concrete-value checks run) is finite."""
        try:
            return bool(np.isfinite(float(self.loss(*jax.tree.map(jnp.asarray, args)))))
        except (ValueError, TypeError, FloatingPointError):
            return False


def _as_key(key):
    if key is None:
        return jax.random.key(0)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return jax.random.key(int(key))
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if isinstance(key, jax.Array) and key.dtype == jnp.uint32 and key.shape == (2,):
        return jax.random.wrap_key_data(key)
    raise TypeError(f"key must be None, an int or a jax PRNG key; got {key!r}")


def _validate(loss, grad, sampler, args, n, budget):
    if not callable(loss):
        raise TypeError(f"loss must be callable; got {type(loss).__name__}")
    if not callable(grad):
        raise TypeError(f"grad must be callable; got {type(grad).__name__}")
    _check_int("n", n, 1)
    _check_int("memory_budget", budget, 1)
    if sampler is None and args is None:
        raise ValueError("search_grad needs a sampler(key) or args to sample around; got neither")
    if args is not None and not isinstance(args, (tuple, list)):
        raise TypeError(f"args must be the loss's argument tuple; got {type(args).__name__}")


def _check_problem(loss, grad, template, argnums):
    _witnesses.check_scalar_loss(loss, template)
    params = _tree.get_params(template, argnums)
    leaves = _tree.check_params(params, argnums)
    try:
        hand = jax.eval_shape(grad, *template)
    except Exception as err:
        raise ValueError(
            "search_grad runs every input as one lane of a jit(vmap) program, so grad must be "
            f"traceable by jax; grad(*sampler(key)) failed to trace: {_witnesses.first_line(err)}"
        ) from err
    _tree.check_grad_tree("grad(*sampler(key))", hand, params, argnums, leaves)


def _screen_draws(search: _Search, keys, n: int) -> _lanes.Screen:
    """Draw and screen ``n`` inputs, one block at a time (drawn on device, never on host)."""
    programs = search.programs
    return _in_blocks(lambda sel: search.screen(programs.sampler(keys[sel])), n, search.block)


def _referee_draws(search: _Search, keys, scr, lanes: np.ndarray) -> np.ndarray:
    """The outcome code of each lane in ``lanes`` (redrawn from its key)."""

    def block(sel):
        lane = lanes[sel]
        batch = search.programs.sampler(keys[lane])
        return search.referee(batch, scr.top[lane], scr.top_ratio[lane])[0]

    return _in_blocks(block, lanes.size, search.wblock).min(axis=1)


def _judge_candidates(search: _Search, target: Outcome) -> _shrink.Judge:
    """Batched: which candidate inputs still fail with the outcome ``target``."""
    code = _lanes.SEVERITY.index(target)
    return lambda cands: (search.judge(cands)[1] == code).tolist()


def search_grad(
    loss: Callable[..., jax.Array],
    grad: Callable[..., Any],
    sampler: Callable[[jax.Array], tuple] | None = None,
    *,
    args: tuple | None = None,
    n: int = 10_000,
    argnums: int | tuple[int, ...] = 0,
    key: jax.Array | int | None = None,
    rtol: float | None = None,
    shrink: bool = True,
    memory_budget: int = DEFAULT_BUDGET,
) -> SearchReport:
    r"""Search input space for the inputs where a hand gradient disagrees with ``jax.grad``.

    ``n`` inputs ``sampler(key_j)`` are drawn on device and run as lanes of ``jit(vmap(...))``
    programs, in blocks of lanes sized to ``memory_budget``; each lane compares hand and autodiff
    element by element at ``rtol`` (``_lanes`` eq. (1)). The failing lanes (up to 256, the worst)
    are refereed by finite differences at their worst elements: a kink with the hand value in
    the subdifferential, or a float32 disagreement that a float64 copy resolves, is named and not
    counted as a bug. The worst confirmed failure (most severe outcome, then largest ratio) is
    shrunk toward a minimal input (``_shrink`` eq. (1): fewest non-zeros, round numbers,
    magnitudes near 1), keeping its outcome, and checked by :func:`~gradlab.check_grad`.

    Args:
      loss: ``loss(*args)``, a real scalar.
      grad: the hand gradient ``grad(*args)`` with respect to ``args[argnums]``; must trace.
      sampler: ``sampler(key) -> args``, a pure jax function of a PRNG key. Default: the
        sampler around ``args`` of ``_samplers`` eq. (1).
      args: an argument tuple: the default sampler's centre, and the tree, shapes and dtypes
        ``sampler`` must return when both are given.
      n: inputs drawn (a positive int).
      argnums: which argument(s) are differentiated, as in ``jax.grad``.
      key: PRNG key or int seed of the draws (default 0).
      rtol: tolerance of eq. (1) (default :math:`2^{12}\varepsilon` of the parameters' dtype).
      shrink: shrink the worst failing input and check it with all three witnesses.
      memory_budget: bytes the lanes of one block may hold (each lane counted by the values of
        its traced program, an upper bound).

    Returns:
      A :class:`SearchReport`: ``.ok``, ``.worst`` and ``.shrunk`` counterexamples, ``.report``
      (the three-witness ``GradReport`` at the shrunk input), counts per outcome, throughput.

    Examples:
      >>> import jax.numpy as jnp
      >>> loss = lambda w: jnp.sum(jnp.where(w > 1, w**2, w))
      >>> grad = lambda w: jnp.where(w > 1, 2 * w, 1.0)
      >>> search_grad(loss, grad, args=(jnp.zeros(3),), n=256).ok
      True
    """
    _validate(loss, grad, sampler, args, n, memory_budget)
    with contextlib.nullcontext() if jax.config.read("jax_enable_x64") else jax.enable_x64(True):
        key = _as_key(key)
        if sampler is None:
            assert args is not None  # _validate refuses neither sampler nor args
            sampler = _samplers.around(tuple(args))
        template = _samplers.template(sampler, key, None if args is None else tuple(args))
        argnums = _tree.normalize_argnums(argnums, len(template))
        _check_problem(loss, grad, template, argnums)
        search = _Search(loss, grad, sampler, template, argnums, rtol, memory_budget)
        return _run(search, key, n, shrink, grad)


def _run(search: _Search, key, n: int, shrink: bool, grad) -> SearchReport:
    start = time.perf_counter()
    keys = jax.random.split(key, n)
    scr = _screen_draws(search, keys, n)
    failing = np.flatnonzero(scr.finite & (scr.ratio > 1))
    lanes = failing[np.argsort(-scr.ratio[failing], kind="stable")][:MAX_REFEREED]
    codes = _referee_draws(search, keys, scr, lanes) if lanes.size else np.zeros(0, int)
    seconds = time.perf_counter() - start
    counts = tuple((o, int(np.sum(codes == i))) for i, o in enumerate(_lanes.SEVERITY))
    bad = [i for i in np.argsort(codes, kind="stable") if _lanes.SEVERITY[codes[i]].is_failure]
    worst = shrunk = report = None
    rounds = 0
    if bad:
        drawn = _host(_take(search.programs.sampler(keys[lanes[bad[:1]]]), 0))
        worst = search.counterexample(drawn)
    if worst is not None and shrink:
        judge = _judge_candidates(search, worst.outcome)
        small, rounds = _shrink.shrink(worst.args, judge, search.in_domain)
        shrunk = search.counterexample(small)
        report = _three_witnesses(search, grad, small)
    return SearchReport(
        ok=worst is None,
        n=n,
        dtype=str(search.dtype),
        rtol=search.rtol,
        out_of_domain=int(np.sum(~scr.finite)),
        disagree=int(failing.size),
        refereed=int(lanes.size),
        counts=tuple(c for c in counts if c[1]),
        worst=worst,
        shrunk=shrunk,
        shrink_rounds=rounds,
        report=report,
        seconds=seconds,
    )


def _three_witnesses(search: _Search, grad, args):
    """``check_grad`` at ``args`` (None when its concrete-value checks refuse them)."""
    from gradlab.check._grad import check_grad  # the full checker imports more than a search

    args = jax.tree.map(jnp.asarray, args)
    try:
        return check_grad(search.loss, grad, *args, argnums=search.argnums)
    except (ValueError, TypeError):
        return None
