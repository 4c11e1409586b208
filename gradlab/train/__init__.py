"""Training: one pure ``lax.scan`` loop (:func:`fit`) and gradient-descent stability bounds.

``fit`` trains any loss with any optax optimizer, with a hand or autodiff gradient, full-batch or
mini-batch, with a strided history, divergence freezing, an early-stopping mask and traced value
checks that all work under ``jit`` and ``vmap``. ``stability.max_stable_lr`` gives the
``2 / lambda_max`` bound.
"""

from gradlab.train import stability
from gradlab.train._fit import fit
from gradlab.train._types import (
    DIVERGENCE_FACTOR,
    PRECISIONS,
    EarlyStop,
    FitConfig,
    FitLike,
    FitResult,
    default_divergence_bound,
)
from gradlab.train.stability import max_stable_lr

__all__ = [
    "DIVERGENCE_FACTOR",
    "PRECISIONS",
    "EarlyStop",
    "FitConfig",
    "FitLike",
    "FitResult",
    "default_divergence_bound",
    "fit",
    "max_stable_lr",
    "stability",
]
