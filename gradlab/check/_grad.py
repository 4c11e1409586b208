r"""``check_grad`` and ``assert_grad``: the driver of the pipeline (see ``gradlab.check``).

``Problem`` -> ``Witnesses`` of each precision (the user's dtype and, below float64, a float64
copy) -> one ``FD`` on the float64 problem, passed to both -> gradients at nearby points where
something is suspect (``_kinks`` eq. (3)) -> refined differences where a verdict hangs on them
(``_differences`` eq. (3)) -> a ``Judgement`` per precision -> leaf reports and verdicts ->
blame, per-term reports, the precision summary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from gradlab._headline import headline
from gradlab.check import _blame, _compare, _differences, _scale, _witnesses
from gradlab.check._differences import DEFAULT_FD_MEMORY_BUDGET
from gradlab.check._fast import run_fast
from gradlab.check._precision import Checked, run_full
from gradlab.check._problem import Names, Problem, build
from gradlab.check._report import DtypeVerdict, GradReport
from gradlab.check._settings import DEFAULT_DIRECTIONS, Settings
from gradlab.check._values import check_values
from gradlab.check._verdict import Finding, Verdict


class GradientMismatch(AssertionError):
    """Raised by :func:`assert_grad`; ``.report`` is the report.

    The message reads like pytest's own: one line naming the failing leaf, how many of its
    elements differ and the worst with its relative error (``gradlab._headline``), then the
    report's table.
    """

    __module__ = "gradlab"  # tracebacks and pytest name it where users import it

    def __init__(self, report: GradReport):
        super().__init__(f"{headline(report)}\n{report}")
        self.report = report


def _precisions(problem: Problem) -> list[Problem]:
    """The user's problem, then (below float64) its float64 copy: the last one carries the FD."""
    wide = problem.as_dtype(_differences.fd_dtype(problem.dtype))
    return [problem] if wide is problem else [problem, wide]


def _check_terms(problem: Problem, value: float, s: Settings) -> dict[str, np.ndarray]:
    """Term values must sum to the loss; returns each term's autodiff gradient, raveled."""
    assert s.terms is not None  # called only when terms were given
    grads, total, mags = {}, 0.0, abs(value)
    for name, term in s.terms.items():
        val, g = _witnesses.autodiff(term, problem.args, problem.argnums, f"terms[{name!r}]")
        total += float(val)
        mags += abs(float(val))
        grads[name] = _witnesses.autodiff_part(problem, g)
    tol = _compare.default_rtol(problem.dtype) * max(mags, float(np.finfo(np.float64).tiny))
    if np.isfinite(value) and not abs(total - value) <= tol:
        raise ValueError(
            f"terms must sum to the loss: sum of terms({', '.join(s.terms)}) = {total!r} but "
            f"loss(*args) = {value!r} (difference {abs(total - value):.3g}, tolerance {tol:.3g})"
        )
    return grads


def _blame_verdicts(checked: Checked, term_grads: dict[str, np.ndarray]):
    """Fit the residual on the term gradients over the smooth, finite elements (``_blame``)."""
    j, w = checked.judgement, checked.witnesses
    if j is None:
        return (), []
    use = ~j.kink & np.isfinite(w.hand) & np.isfinite(w.autodiff)
    residual = np.where(use, w.hand - w.autodiff, 0.0)
    fit = _blame.blame(residual, {t: np.where(use, g, 0.0) for t, g in term_grads.items()})
    if not fit:
        return (), []
    r2 = _blame.adjusted_r2(fit, int(use.sum()))
    if not r2 >= _blame.BLAME_MIN_R2:
        detail = (
            f"the best fit on the {len(fit)} term gradients over {int(use.sum())} smooth "
            f"elements explains {_blame.explained(fit):.1%} of it (adjusted R^2 {r2:.3g}); a "
            f"term is named when the adjusted R^2 is at least {_blame.BLAME_MIN_R2:g}"
        )
        return (), [Verdict(Finding.BLAME_UNEXPLAINED, detail=detail)]
    named = _blame.significant(fit)
    detail = ", ".join(f"term {b.term!r} x {b.coef:.6g} ({b.explained:.1%})" for b in named)
    detail += " (a term whose hand gradient is off by a factor a has coef a - 1)"
    return tuple(fit), [Verdict(Finding.BLAME, detail=detail)]


def _summary(user: GradReport, copy: GradReport) -> Verdict:
    """One verdict comparing the user's dtype with the float64 copy."""
    dt, rt = user.dtype, f"{user.rtol:.2g}"
    if copy.ok and not user.ok:
        return Verdict(
            Finding.PRECISION_ONLY,
            detail=f"the float64 copy passes but {dt} does not at rtol {rt}; the formula loses "
            f"accuracy in {dt}",
        )
    if not copy.ok and not user.ok:
        return Verdict(
            Finding.DERIVATION_ERROR,
            detail="the float64 copy fails too, so it is not a precision issue",
        )
    if not copy.ok:
        return Verdict(
            Finding.DERIVATION_ERROR,
            detail=f"the float64 copy fails although {dt} passes at its rtol {rt}: the formula "
            f"is wrong by less than {dt} can resolve",
        )
    n = sum(math.prod(leaf.shape) for leaf in copy.leaves)
    return Verdict(Finding.OK, count=n, total=n, detail=f"in {dt} and in the float64 copy")


def _first(report: GradReport) -> Verdict:
    return next((v for v in report.verdicts if v.failing), report.verdicts[0])


def run(problem: Problem, s: Settings) -> GradReport:
    """The whole pipeline for a validated problem (every precision, blame, per-term reports)."""
    problems = _precisions(problem)
    if _scale.applies(problem, s):
        checked = _scale.run_scaled(problems, s)
    else:
        checked = (run_fast if s.mode == "fast" else run_full)(problems, s)
    user = checked[0].report
    blame, extra = (), []
    if s.terms:
        tgrads = _check_terms(problem, checked[0].witnesses.value, s)
        if not user.ok:
            blame, extra = _blame_verdicts(checked[0], tgrads)
    sub = {}
    for name, tg in (s.term_grads or {}).items():
        assert s.terms is not None  # Settings refuses term_grads without terms
        term_problem = dataclasses.replace(
            problem, loss=s.terms[name], hand=tg, value_and_grad=False
        )
        sub[name] = run(term_problem, dataclasses.replace(s, terms=None, term_grads=None))
    ok = user.ok and all(r.ok for r in sub.values())
    report = dataclasses.replace(
        user, ok=ok, terms=sub, blame=blame, verdicts=(*user.verdicts, *extra)
    )
    if len(checked) == 1:
        return report
    copy = checked[1].report
    summary = _summary(user, copy)
    own = report.verdicts
    if summary.kind is Finding.OK:  # said once: the summary replaces the dtype's own "ok"
        own = tuple(v for v in own if v.kind is not Finding.OK)
    dtypes = (
        DtypeVerdict(f"{user.dtype} (your dtype, rtol {user.rtol:.2g})", user.ok, _first(user)),
        DtypeVerdict(f"float64 copy (rtol {copy.rtol:.2g})", copy.ok, _first(copy)),
    )
    return dataclasses.replace(
        report,
        ok=ok and copy.ok,
        dtypes=dtypes,
        float64_copy=copy,
        verdicts=(summary, *own),
    )


def _x64():
    """x64 on for the check (the float64 copy and differences need it); the user's setting is
    restored afterwards. Inputs keep their dtype; constants the loss creates become float64."""
    return contextlib.nullcontext() if jax.config.jax_enable_x64 else jax.enable_x64(True)


def check_grad(
    loss: Callable[..., jax.Array],
    grad: Callable[..., Any],
    *args: Any,
    argnums: int | tuple[int, ...] = 0,
    terms: Mapping[str, Callable[..., jax.Array]] | None = None,
    term_grads: Mapping[str, Callable[..., Any]] | None = None,
    mode: str = "full",
    rtol: float | None = None,
    atol: float | None = None,
    key: jax.Array | int | None = None,
    directions: int = DEFAULT_DIRECTIONS,
    n_worst: int = 5,
    fd_memory_budget: int = DEFAULT_FD_MEMORY_BUDGET,
    names: Names = None,
    value_and_grad: bool = False,
    memory_budget: int | None = None,
    order: int = 1,
    fd_elements: int | str = "auto",
) -> GradReport:
    r"""Check a hand gradient against ``jax.grad``, refereed by finite differences.

    Three witnesses per element: the hand gradient ``grad(*args)``, ``jax.grad(loss, argnums)``
    and central finite differences with Richardson extrapolation (``_differences`` eq. (2)).
    Hand and autodiff must agree to ``rtol`` (default :math:`2^{12}\varepsilon`, ``_compare``
    eq. (1)); finite differences say which one is wrong when they do not. At a kink (``_kinks``
    eq. (2)-(3)) the hand value must lie in the subdifferential ``[low, high]`` instead: the
    range of the one-sided slopes and of the gradients at seeded nearby points.

    A float32 (or lower) input is checked twice: in its own dtype with ``rtol`` scaled to its
    epsilon, and as a float64 copy at the float64 tolerance; ``report.dtypes`` labels each
    verdict and ``report.float64_copy`` holds the second report. When ``jax_enable_x64`` is off
    (JAX's default), the check runs inside ``jax.enable_x64(True)`` to make that copy.

    Args:
      loss: ``loss(*args)`` returns a real scalar; traced by jax.
      grad: ``grad(*args)`` returns the gradient with respect to ``args[argnums]``, a pytree
        with the same structure and leaf shapes (never reshaped or broadcast). It may be numpy
        code jax cannot trace: it is then called eagerly on copies of the arguments, and the
        report says so. With ``value_and_grad=True`` it returns ``(value, gradient)``.
      *args: the arguments of ``loss`` and ``grad`` (arrays, pytrees, PRNG keys).
      argnums: which argument(s) to differentiate, as in ``jax.grad``.
      terms: ``{name: term(*args)}`` whose sum is ``loss`` (verified). When the check fails, the
        residual ``hand - autodiff`` is fitted on the term gradients over the smooth elements;
        terms are named when the fit explains at least 99% of it (``report.blame``).
      term_grads: ``{name: hand gradient of terms[name]}``: each is checked on its own
        (``report.terms[name]``).
      mode: ``"full"`` checks every element; ``"fast"`` checks ``directions`` seeded random
        directions per leaf through JVPs and reruns a failing leaf in full to localize.
      rtol: relative tolerance, >= 0 (default :math:`2^{12}\varepsilon` of the dtype checked).
      atol: absolute tolerance, >= 0 (default ``rtol`` times the gradient's largest magnitude).
      key: an int or a jax PRNG key seeding the random directions and nearby points; default 0.
      directions: directions per leaf in fast mode.
      n_worst: elements listed per leaf in ``report.leaves[i].worst``.
      fd_memory_budget: bytes the finite differences may hold at once (sets the chunk size).
      names: name slices of a flat parameter vector: ``{"coef": slice(0, 5), ...}`` or an
        ``unravel`` function (reports then say ``coef[3]``, not ``args[0][3]``).
      value_and_grad: ``grad`` returns ``(value, gradient)``; the value is checked against
        ``loss(*args)`` too.
      memory_budget: deprecated name of ``fd_memory_budget``.
      order: 2 checks JAX's derivative of ``grad`` against the Hessian of ``loss`` instead
        (:func:`~gradlab.check.check_grad_of_grad`: a hand gradient behind ``stop_gradient``, or
        a ``custom_vjp`` whose backward JAX cannot differentiate, fails there).
      fd_elements: above 4096 elements (``"auto"``) both modes compare hand and autodiff on
        device and take finite differences only at the disagreeing elements, along
        ``directions`` random directions (group testing localizes a shared error) and, in full
        mode, at a seeded sample of 32 agreeing elements (``gradlab.check._scale``); an int
        sets that sample size (and the scaled path at any size), ``"all"`` differences every
        element.

    Returns:
      A :class:`GradReport`: ``.ok``, ``.verdicts`` (``Verdict`` records), ``str()`` a table,
      ``.to_dict()`` JSON-safe.

    Raises:
      InvalidValueError: ``loss(*args)`` fails one of its own value checks (a registered
        derivation's simplex, positivity, support or finiteness check; ``check._values``): the
        message names the check and the first bad entry.

    Examples:
      >>> import jax.numpy as jnp, gradlab
      >>> loss = lambda w: jnp.sum(w ** 3)
      >>> gradlab.check_grad(loss, lambda w: 3 * w ** 2, jnp.arange(3.0)).ok
      True
    """
    if order == 2:
        from gradlab.check._second_order import check_grad_of_grad

        return check_grad_of_grad(
            loss, grad, *args, argnums=argnums, mode=mode, rtol=rtol, atol=atol, key=key
        )
    if order != 1:
        raise ValueError(f"order must be 1 or 2; got {order!r}")
    if memory_budget is not None:
        warnings.warn(
            "check_grad(memory_budget=...) is renamed fd_memory_budget", DeprecationWarning, 2
        )
        fd_memory_budget = memory_budget
    with _x64():
        s = Settings(
            mode, rtol, atol, key, directions, n_worst, fd_memory_budget, terms, term_grads,
            fd_elements,
        )  # fmt: skip
        problem = build(loss, grad, args, argnums, names, value_and_grad)
        check_values(loss, problem.args)
        return run(problem, s)


def assert_grad(loss, grad, *args, **kwargs) -> GradReport:
    """:func:`check_grad`, raising :class:`GradientMismatch` unless ok (message: one line
    saying why, then the report).

    Returns:
      The report, when it is ok.
    """
    report = check_grad(loss, grad, *args, **kwargs)
    if not report.ok:
        raise GradientMismatch(report)
    return report
