"""gradlab.check: hand gradients against ``jax.grad``, refereed by finite differences.

Three witnesses per element (hand, autodiff, finite differences with Richardson), kinks judged by
subdifferential membership, non-finite values reported by witness, path and index, per-term checks
and blame for composite losses, float32 checked beside a float64 copy, Hessians and HVPs.
"""

from gradlab.check._blame import Blame
from gradlab.check._finite_differences import FiniteDifferences, finite_differences
from gradlab.check._grad import GradientMismatch, assert_grad, check_grad
from gradlab.check._hessian import check_hessian
from gradlab.check._report import DtypeVerdict, Element, GradReport, Kink, LeafReport, NonFinite
from gradlab.check._search import Counterexample, SearchReport, search_grad

__all__ = [
    "Blame",
    "DtypeVerdict",
    "Element",
    "FiniteDifferences",
    "GradReport",
    "GradientMismatch",
    "Kink",
    "LeafReport",
    "NonFinite",
    "assert_grad",
    "check_grad",
    "check_hessian",
    "finite_differences",
    "Counterexample",
    "SearchReport",
    "search_grad",
]
