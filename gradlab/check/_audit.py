r"""``audit_rules``: every custom rule inside a function, each checked where it is actually called.

For a function ``fn`` (a model step, a loss), :func:`audit_rules`

1. traces ``fn(*args)`` and finds each ``custom_jvp`` / ``custom_vjp`` call at any depth
   (``_rules.find_rules``), with its name and source location;
2. runs ``fn`` once, recording the operands each call receives (``_rules.record_operands``);
3. checks each rule at those operands: ``jax.vjp`` of the call (which runs the rule) against
   autodiff of its primal (rules nested inside it removed too), refereed by finite differences
   of the call, in the operands' dtype and in a float64 copy (``fn`` re-traced at float64
   arguments, the call matched by its position in the walk). A primal autodiff cannot
   differentiate (``pure_callback``, a Pallas kernel) is differentiated through
   ``references[name]`` when given and is otherwise reported ``UNCHECKED_RULE``, never passed;
4. checks the whole function's derivative with every rule against the one with every rule
   removed (``_rules`` eq. (1)), w.r.t. ``args[argnums]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.check import _rules, _vector_check, _vector_problem
from gradlab.check._report import Record
from gradlab.check._rules import RuleSite
from gradlab.check._settings import seed_words as _seed_of
from gradlab.check._vector import Kind
from gradlab.check._vector_check import Copy, Options
from gradlab.check._vector_report import VectorReport
from gradlab.check._verdict import Finding, Verdict


@dataclasses.dataclass(frozen=True)
class RuleCheck(Record):
    """One custom-rule call site and its outcome.

    ``kind`` is ``Finding.OK``, the first failing finding of ``report``, or
    ``Finding.UNCHECKED_RULE`` (``reason`` says why); ``report`` is the full check of the rule at
    the operands the site received (None when unchecked).
    """

    name: str
    rule_kind: str
    source: str
    rule: str
    where: tuple[str, ...]
    ok: bool
    kind: Finding
    reason: str = ""
    report: VectorReport | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.rule_kind} at {self.source})"

    def __str__(self) -> str:
        inside = f" inside {' > '.join(self.where)}" if self.where else ""
        head = f"{'ok  ' if self.ok else 'FAIL'} {self.label}{inside}: {self.kind.value}"
        if self.reason:
            head += f" -- {self.reason}"
        if self.report is not None and not self.report.ok:
            head += "".join(f"\n       at {loc}" for loc in self.report.locations[:3])
        return head


@dataclasses.dataclass(frozen=True)
class AuditReport(Record):
    """The findings of :func:`audit_rules`: one :class:`RuleCheck` per call site, and the whole
    function's derivative with its rules against the one without (``whole``)."""

    ok: bool
    rules: tuple[RuleCheck, ...]
    whole: VectorReport | None
    verdicts: tuple[Verdict, ...]
    whole_skipped: str = ""  # why the whole-function check did not run ("" when it ran)

    def __bool__(self) -> bool:
        return bool(self.ok)

    @property
    def failing(self) -> tuple[str, ...]:
        """Names of the rules that fail or are unchecked."""
        return tuple(r.name for r in self.rules if not r.ok)

    def __str__(self) -> str:
        lines = [
            f"gradlab audit_rules: {'ok' if self.ok else 'MISMATCH'} ({len(self.rules)} "
            "custom-rule call(s))"
        ]
        lines += [f"  {r}" for r in self.rules]
        if self.whole is not None:
            lines.append(
                f"  {'ok  ' if self.whole.ok else 'FAIL'} whole function: derivative with its "
                f"rules {'equals' if self.whole.ok else 'differs from'} the one without them"
            )
        if self.whole_skipped:
            lines.append(f"  --   whole function not checked: {self.whole_skipped}")
        lines += [f"- {v}" for v in self.verdicts]
        return "\n".join(lines)


def _float_positions(ops: list) -> tuple[int, ...]:
    return tuple(j for j, x in enumerate(ops) if jnp.issubdtype(jnp.result_type(x), jnp.inexact))


def _site_functions(site: RuleSite, references: Mapping[str, Callable]):
    """``(f, reference)`` on the flat operands: the call with its rule, and its primal."""
    visit = _rules.strip_visitor(references)

    def f(*ops):
        return tuple(_rules.bind(site.eqn, ops))

    def reference(*ops):
        return tuple(visit(site.eqn, ops))

    return f, reference


def _differentiable(reference: Callable, ops: list, argnums) -> str:
    """Empty when autodiff can differentiate ``reference`` at ``ops``, else the reason."""

    def pull(*xs):
        out, vjp = jax.vjp(lambda *d: reference(*_put(xs, argnums, d)), *[xs[j] for j in argnums])
        return vjp(out)

    try:
        jax.eval_shape(pull, *ops)
    except Exception as err:  # noqa: BLE001 - any failure means autodiff cannot differentiate it
        first = str(err).strip().splitlines()
        return f"{type(err).__name__}: {first[0] if first else ''}"[:200]
    return ""


def _put(xs, argnums, d):
    out = list(xs)
    for j, v in zip(argnums, d, strict=True):
        out[j] = v
    return out


def check_site(site, ops, wide, references, opts) -> RuleCheck:
    """Check one rule at the operands ``ops`` it received (``wide``: its float64 twin)."""
    base = dict(
        name=site.name,
        rule_kind=site.kind.value,
        source=site.source,
        rule=site.rule,
        where=site.where,
    )
    if ops is None:
        return RuleCheck(
            **base,
            ok=False,
            kind=Finding.UNCHECKED_RULE,
            reason="never ran at these arguments (a branch not taken)",
        )
    argnums = _float_positions(ops)
    if not argnums:
        return RuleCheck(**base, ok=True, kind=Finding.OK, reason="no floating operand")
    f, reference = _site_functions(site, references)
    why = _differentiable(reference, ops, argnums)
    if why:
        return RuleCheck(
            **base,
            ok=False,
            kind=Finding.UNCHECKED_RULE,
            reason=f"autodiff cannot differentiate its primal ({why})",
        )
    copy = None
    if wide is not None:
        wf, wref = _site_functions(wide[0], references)
        copy = Copy(wf, None, wref, tuple(wide[1]))
    try:
        report = _vector_check.run(
            Kind.OWN, f, None, tuple(ops), argnums, reference, opts, site.label, copy
        )
    except Exception as err:  # noqa: BLE001 - a rule JAX cannot run is a finding, not a crash
        first = str(err).strip().splitlines()
        return RuleCheck(
            **base,
            ok=False,
            kind=Finding.RULE_NOT_DIFFERENTIABLE,
            reason=f"running the rule raised {type(err).__name__}: {first[0] if first else ''}"[
                :240
            ],
        )
    failing = [v.kind for v in report.verdicts if v.failing]
    kind = (
        Finding.OK
        if report.ok
        else next((k for k in failing if k not in (Finding.DERIVATION_ERROR,)), failing[0])
    )
    return RuleCheck(**base, ok=report.ok, kind=kind, report=report)


def _sites(fn, args):
    flat = jax.tree.leaves(args)
    closed, sites = _rules.find_rules(
        lambda *a: fn(*jax.tree.unflatten(jax.tree.structure(args), a)), *flat
    )
    return sites, _rules.record_operands(closed, flat)


def audit_rules(
    fn: Callable[..., Any],
    *args: Any,
    references: Mapping[str, Callable[..., Any]] | None = None,
    argnums: int | tuple[int, ...] = 0,
    mode: str = "full",
    rtol: float | None = None,
    key: Any = None,
    whole: bool = True,
) -> AuditReport:
    """Find every custom_jvp / custom_vjp rule inside ``fn`` and check each where it is called.

    Args:
      fn: any traceable function (a loss, a model step).
      *args: its arguments.
      references: ``{name: reference_fn}`` for rules whose primal autodiff cannot differentiate
        (``pure_callback``, a kernel): ``reference_fn(*operands)`` takes the operands of the
        custom function (its positional arguments, flattened) and returns its outputs (a
        tuple); its autodiff is then the reference. Keyed by the primal function's name.
      argnums: the argument(s) of ``fn`` the whole-function check differentiates.
      mode: ``"full"`` (every Jacobian entry of each rule) or ``"fast"``.
      rtol: tolerance (default :math:`2^{12}\\varepsilon` of each check's dtype).
      key: seed of fast-mode probes.
      whole: also check ``fn``'s derivative with its rules against the one without.

    Returns:
      An :class:`AuditReport`: ``.ok``, ``.rules`` (one :class:`RuleCheck` per call site, named
      by function name and source location), ``.failing`` (names), ``.whole``.
    """
    if not jax.config.read("jax_enable_x64"):
        with jax.enable_x64(True):
            return audit_rules(
                fn,
                *args,
                references=references,
                argnums=argnums,
                mode=mode,
                rtol=rtol,
                key=key,
                whole=whole,
            )
    references = _check_references(references)
    opts = Options(mode=mode, rtol=rtol, seed=_seed_of(key))
    sites, operands = _sites(fn, args)
    narrow = any(
        np.finfo(jnp.result_type(x)).eps > np.finfo(np.float64).eps
        for x in jax.tree.leaves(args)
        if jnp.issubdtype(jnp.result_type(x), jnp.inexact)
    )
    wide_sites, wide_ops = [], {}
    if narrow:  # the float64 twin of each call: fn re-traced at float64 arguments
        wide_sites, wide_ops = _sites(fn, _vector_problem.wide_args(tuple(args), 0))
    checks = []
    for j, site in enumerate(sites):
        ops = operands.get(id(site.eqn))
        twin = None
        if narrow and j < len(wide_sites) and wide_sites[j].name == site.name:
            twin = (wide_sites[j], wide_ops.get(id(wide_sites[j].eqn)))
            twin = twin if twin[1] is not None else None
        checks.append(check_site(site, ops, twin, references, opts))
    whole_report, skipped = None, "whole=False"
    if whole:
        whole_report, skipped = _whole(fn, args, argnums, references, opts, checks)
    verdicts = _verdicts(checks, whole_report, sites)
    ok = all(c.ok for c in checks) and (whole_report is None or whole_report.ok)
    return AuditReport(bool(ok), tuple(checks), whole_report, tuple(verdicts), skipped)


def _whole(fn, args, argnums, references, opts, checks) -> tuple[VectorReport | None, str]:
    """The whole function with its rules against without them; or why that cannot run."""
    unchecked = [c.name for c in checks if c.kind is Finding.UNCHECKED_RULE]
    if unchecked:
        return None, f"rule(s) {', '.join(unchecked)} could not be removed or checked"
    try:
        report = _vector_check.run(
            Kind.OWN,
            fn,
            None,
            tuple(args),
            argnums,
            _rules.strip(fn, references),
            opts,
            "whole function",
        )
    except (ValueError, TypeError, NotImplementedError) as err:
        first = str(err).strip().splitlines()
        return None, f"{type(err).__name__}: {first[0] if first else ''}"[:240]
    return report, ""


def _verdicts(checks, whole_report, sites) -> list[Verdict]:
    """The failing verdicts of each rule, their paths prefixed by the rule's label."""
    out = []
    for c in checks:
        if c.ok:
            continue
        if c.report is None:
            out.append(Verdict(c.kind, c.label, detail=c.reason))
            continue
        out += _prefixed(c.report, c.label)
    if whole_report is not None and not whole_report.ok:
        out += _prefixed(whole_report, "whole function")
    if not out:
        entries = sum(_entries(c) for c in checks)
        detail = f"in {len(sites)} custom-rule call(s): each rule equals autodiff of its primal"
        out.append(Verdict(Finding.OK, count=entries, detail=detail))
    return out


def _prefixed(report: VectorReport, label: str) -> list[Verdict]:
    skip = (Finding.DERIVATION_ERROR, Finding.PRECISION_ONLY, Finding.FAST_RERUN)
    return [
        dataclasses.replace(v, path=f"{label}: {v.path}")
        for v in report.verdicts
        if v.failing and v.kind not in skip
    ]


def _entries(c: RuleCheck) -> int:
    if c.report is None:
        return 0
    return sum(int(np.prod(leaf.shape, dtype=np.int64)) for leaf in c.report.leaves)


def _check_references(references):
    if references is None:
        return {}
    if not isinstance(references, Mapping):
        raise TypeError(
            f"references must be a mapping {{name: function}}; got {type(references).__name__}"
        )
    for k, v in references.items():
        if not isinstance(k, str) or not callable(v):
            raise TypeError(f"references must map rule names (str) to functions; got {k!r}: {v!r}")
    return dict(references)
