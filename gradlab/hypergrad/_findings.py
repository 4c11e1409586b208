"""What a hypergradient witness can find, and the error raised when one refuses to answer."""

from __future__ import annotations

import enum


class Finding(enum.Enum):
    """The outcome of a hypergradient check, one per verdict (value: its JSON name)."""

    AGREE = "agree"
    IMPLICIT_OFF = "implicit_off"  # disagrees while its solves converged: a wrong formula
    INNER_NOT_CONVERGED = "inner_not_converged"  # the inner solve is too far from the optimum
    LINEAR_SOLVE_NOT_CONVERGED = "linear_solve_not_converged"  # CG/GMRES residual too large
    INNER_DIVERGED = "inner_diverged"  # non-finite inner parameters or a diverged fit
    UNROLL_TRUNCATED = "unroll_truncated"  # the unroll ends away from the inner optimum
    UNROLLED_OFF = "unrolled_off"  # disagrees though its final iterate is at the optimum
    NONSMOOTH = "nonsmooth"  # a kink (a lasso support change): no hypergradient there
    FD_INCONCLUSIVE = "fd_inconclusive"  # the finite-difference referee is too noisy to judge


class Witness(enum.Enum):
    """The three hypergradient witnesses."""

    IMPLICIT = "implicit"
    UNROLLED = "unrolled"
    FINITE_DIFFERENCES = "finite_differences"


class HypergradRefused(ValueError):
    """A witness refuses to answer; ``finding`` says why and ``result`` holds its numbers."""

    def __init__(self, message: str, finding: Finding, result=None):
        super().__init__(message)
        self.finding = finding
        self.result = result
