"""gradlab: hand gradients proven against ``jax.grad``, trained and swept at accelerator speed.

The public surface. Layers, each using only those above it:
derivations -> check -> optim -> train -> hypergrad -> sweep -> plot -> cli.
"""

from gradlab import (
    audit,
    check,
    datasets,
    derivations,
    hypergrad,
    optim,
    plot,
    sweeps,
    testing,
    train,
)
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

__version__ = "0.2.0"

# Every subpackage and public module is listed; the sweep package is gradlab.sweeps, since
# gradlab.sweep is the function.
__all__ = [
    "REGISTRY",
    "Derivation",
    "EarlyStop",
    "FitResult",
    "GradReport",
    "GradientMismatch",
    "IllConditionedWarning",
    "InvalidValueError",
    "SearchReport",
    "SweepResult",
    "assert_grad",
    "audit",
    "audit_rules",
    "check",
    "check_grad",
    "check_grad_of_grad",
    "check_hessian",
    "check_hypergrad",
    "check_jacobian",
    "check_jvp",
    "check_rules",
    "check_vjp",
    "datasets",
    "derivations",
    "exponentiated_gradient",
    "fista",
    "fista_iterate",
    "fit",
    "hypergrad",
    "hypergrad_sweep",
    "ista",
    "lstsq",
    "normal_equation",
    "optim",
    "plot",
    "projected",
    "prox_l1",
    "ridge_path",
    "search_grad",
    "stability",
    "sweep",
    "sweep_quadratic",
    "sweeps",
    "testing",
    "train",
]
