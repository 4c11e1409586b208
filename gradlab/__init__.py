"""gradlab: hand gradients proven against ``jax.grad``, trained and swept at accelerator speed.

The public surface. Layers, each using only those above it:
derivations -> check -> optim -> train -> sweep -> plot -> cli.
"""

from gradlab import derivations, optim
from gradlab.check import (
    GradientMismatch,
    GradReport,
    SearchReport,
    assert_grad,
    check_grad,
    check_hessian,
    search_grad,
)
from gradlab.derivations import REGISTRY, Derivation
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
from gradlab.sweep import SweepResult, sweep, sweep_quadratic
from gradlab.train import EarlyStop, FitResult, fit, stability

__version__ = "0.1.0"

__all__ = [
    "GradReport",
    "GradientMismatch",
    "assert_grad",
    "check_grad",
    "check_hessian",
    "SearchReport",
    "search_grad",
    "REGISTRY",
    "Derivation",
    "derivations",
    "optim",
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
]
