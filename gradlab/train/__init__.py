"""Training: one pure ``lax.scan`` loop (:func:`fit`) and gradient-descent stability bounds.

``fit`` trains any loss with any optax optimizer, with a hand or autodiff gradient, full-batch or
mini-batch, with a strided history, divergence freezing and an early-stopping mask that all work
under ``jit`` and ``vmap``. ``stability.max_stable_lr`` gives the ``2 / lambda_max`` bound.
"""

from gradlab.train import stability
from gradlab.train._checks import PRECISIONS
from gradlab.train.fit import EarlyStop, FitResult, fit
from gradlab.train.stability import max_stable_lr

__all__ = ["PRECISIONS", "EarlyStop", "FitResult", "fit", "max_stable_lr", "stability"]
