"""gradlab: hand-derived gradients proven against ``jax.grad``, trained and swept at accelerator speed.

The public surface. Layers, each using only those above it:
derivations -> check -> optim -> train -> sweep -> plot -> cli.
"""

from gradlab import derivations
from gradlab.check import GradientMismatch, GradReport, assert_grad, check_grad, check_hessian
from gradlab.derivations import REGISTRY, Derivation
from gradlab.sweep import SweepResult, sweep
from gradlab.train import EarlyStop, FitResult, fit, stability

__version__ = "0.1.0"

__all__ = [
    "GradReport",
    "GradientMismatch",
    "assert_grad",
    "check_grad",
    "check_hessian",
    "REGISTRY",
    "Derivation",
    "derivations",
    "EarlyStop",
    "FitResult",
    "fit",
    "stability",
    "SweepResult",
    "sweep",
]
