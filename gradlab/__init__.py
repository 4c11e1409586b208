"""gradlab: hand gradients proven against ``jax.grad``, trained and swept at accelerator speed.

The public surface. Layers, each using only those above it:
derivations -> check -> optim -> train -> sweep -> plot -> cli.
"""

from gradlab import audit, check, datasets, derivations, optim, plot, testing, train
from gradlab._validate import InvalidValueError
from gradlab.check import GradientMismatch, GradReport, assert_grad, check_grad, check_hessian
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

# Tracebacks and pytest name the exception where users import it: gradlab.GradientMismatch.
GradientMismatch.__module__ = "gradlab"

# Every subpackage and public module is listed except the sweep package, whose name the sweep
# function takes (gradlab.sweep is the function): it is renamed gradlab.sweeps on another branch
# (i12s), and listed here once that lands.
__all__ = [
    "REGISTRY",
    "Derivation",
    "EarlyStop",
    "FitResult",
    "GradReport",
    "GradientMismatch",
    "IllConditionedWarning",
    "InvalidValueError",
    "SweepResult",
    "assert_grad",
    "audit",
    "check",
    "check_grad",
    "check_hessian",
    "datasets",
    "derivations",
    "exponentiated_gradient",
    "fista",
    "fista_iterate",
    "fit",
    "ista",
    "lstsq",
    "normal_equation",
    "optim",
    "plot",
    "projected",
    "prox_l1",
    "ridge_path",
    "stability",
    "sweep",
    "sweep_quadratic",
    "testing",
    "train",
]
