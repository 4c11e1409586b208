"""gradlab.check: hand gradients against ``jax.grad``, refereed by finite differences.

The checker is one direction of typed hand-offs; no stage reads another's prose and no state
outlives a call:

1. ``Problem`` (``_problem``): the validated input -- loss, hand gradient, arguments,
   ``argnums``, the parameter leaves (pytree leaves, or named slices of a flat vector), the
   dtype checked; ``ravel`` / ``with_params`` / ``as_dtype`` (the float64 copy).
2. ``Witnesses`` (``_witnesses``): the hand gradient, ``jax.grad`` and the loss value, raveled,
   plus how the hand was called (traced, or eagerly on copies). One fused jitted program when
   everything traces, the one-by-one path otherwise; the caller never sees ``None``.
3. ``FD`` (``_differences``): four loss values per element and one pure Richardson
   extrapolation (shared with the Hessian check), computed once on the float64 problem and
   passed explicitly to the check of every precision; refined (eq. (3)) only where a verdict
   hangs on it.
4. ``Judgement`` (``_judge``): per element, typed boolean masks -- hand bug, autodiff
   disagrees, inconclusive, kink outside, hand bug at a kink, kink convention, FD noise,
   non-finite -- from the tolerances of ``_compare``, the kink tests of ``_kinks`` (one-sided
   slopes, then gradients at seeded nearby points: the Clarke subdifferential) and the referee.
5. ``Verdict(kind: Finding, path, count, total, max_rel_err, example)`` (``_verdict``): one per
   non-empty mask; ``str(verdict)`` is the sentence, code compares ``verdict.kind``.
6. Reports (``_report``): frozen dataclasses (``GradReport``, ``HessianReport``, ``LeafReport``,
   ``Element``, ``Kink``, ``NonFinite``, ``DtypeVerdict``) whose ``to_dict()`` is derived from
   their fields; rendering (``_render``) is apart from the data.

The drivers: ``_grad`` (``check_grad``: validated ``Settings`` and ``Problem``, every
precision, blame, per-term reports, the precision summary), ``_precision`` (one precision in
full), ``_fast`` (random directions, failing leaves rerun in full), ``_hessian``
(``check_hessian``: the same judgement on Hessian blocks and HVP rows).
"""

from gradlab.check._audit import AuditReport, RuleCheck, audit_rules
from gradlab.check._blame import Blame
from gradlab.check._finite_differences import FiniteDifferences, finite_differences
from gradlab.check._grad import GradientMismatch, assert_grad, check_grad
from gradlab.check._hessian import check_hessian
from gradlab.check._problem import Problem
from gradlab.check._report import (
    Convention,
    DtypeVerdict,
    Element,
    GradReport,
    HessianReport,
    Kink,
    LeafReport,
    NonFinite,
)
from gradlab.check._search import Counterexample, SearchReport, search_grad
from gradlab.check._second_order import check_grad_of_grad
from gradlab.check._vector_api import (
    check_jacobian,
    check_jvp,
    check_rules,
    check_vjp,
)
from gradlab.check._vector_report import Location, VectorReport
from gradlab.check._verdict import Example, Finding, Verdict

__all__ = [
    "AuditReport",
    "Blame",
    "Convention",
    "Counterexample",
    "DtypeVerdict",
    "Element",
    "Example",
    "Finding",
    "FiniteDifferences",
    "GradReport",
    "GradientMismatch",
    "HessianReport",
    "Kink",
    "LeafReport",
    "Location",
    "NonFinite",
    "Problem",
    "RuleCheck",
    "SearchReport",
    "VectorReport",
    "Verdict",
    "assert_grad",
    "audit_rules",
    "check_grad",
    "check_grad_of_grad",
    "check_hessian",
    "check_jacobian",
    "check_jvp",
    "check_rules",
    "check_vjp",
    "finite_differences",
    "search_grad",
]
