"""gradlab: hand gradients proven against ``jax.grad``, trained and swept at accelerator speed.

The public surface. Layers, each using only those above it:
derivations -> check -> optim -> train -> hypergrad -> sweep -> plot -> cli.
"""

from gradlab import audit, datasets, derivations, hypergrad, optim
from gradlab._validate import InvalidValueError
from gradlab.check import (
    GradientMismatch,
    GradReport,
    SearchReport,
    assert_grad,
    audit_rules,
    check_grad,
    check_grad_of_grad,
    check_hessian,
    check_jacobian,
    check_jvp,
    check_rules,
    check_vjp,
    search_grad,
)
from gradlab.derivations import REGISTRY, Derivation
from gradlab.hypergrad import check_hypergrad
from gradlab.optim import (
    IllConditionedWarning,
    exponentiated_gradient,
    fista,
    fista_iterate,
    ista,
    lstsq,
    normal_equation,
    projected,
    prox_l1,
    ridge_path,
)
from gradlab.sweeps import SweepResult, hypergrad_sweep, sweep, sweep_quadratic
from gradlab.train import EarlyStop, FitResult, fit, stability

__version__ = "0.1.0"

__all__ = [
    "GradReport",
    "GradientMismatch",
    "InvalidValueError",
    "assert_grad",
    "check_grad",
    "check_hessian",
    "audit_rules",
    "check_grad_of_grad",
    "check_jacobian",
    "check_jvp",
    "check_rules",
    "check_vjp",
    "SearchReport",
    "search_grad",
    "REGISTRY",
    "Derivation",
    "datasets",
    "derivations",
    "optim",
    "audit",
    "IllConditionedWarning",
    "exponentiated_gradient",
    "fista",
    "fista_iterate",
    "ista",
    "lstsq",
    "normal_equation",
    "projected",
    "prox_l1",
    "ridge_path",
    "EarlyStop",
    "FitResult",
    "fit",
    "stability",
    "SweepResult",
    "sweep",
    "sweep_quadratic",
    "hypergrad_sweep",
    "hypergrad",
    "check_hypergrad",
]
