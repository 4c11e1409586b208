"""Optimizers optax lacks, as optax gradient transformations, and closed-form oracles.

One algorithm per module (each named for its idea, never for a function it exports, so no
module is shadowed by a function of the same name):

* :mod:`~gradlab.optim.mirror_descent`: exponentiated gradient, mirror descent on the simplex
  (seed 000), in the log domain.
* :mod:`~gradlab.optim.proximal`: soft-thresholding, ISTA and FISTA with adaptive restart
  for L1 / elastic-net penalties (seed 001).
* :mod:`~gradlab.optim.projection`: any optax step followed by an ``optax.projections``
  projection.
* :mod:`~gradlab.optim.closed_form`: least squares (SVD and the seed's normal equation) and
  ridge for many lambdas from one decomposition (seed 002), the oracles for tests.

Everything else (sgd, momentum, adam, schedules, ``inject_hyperparams``, projections) is
optax's own: use it directly. :func:`with_learning_rate` builds one with its learning rate
readable, so ``gradlab.fit`` can refuse a non-positive one (the rule is in
:mod:`~gradlab.optim._learning_rate`).
"""

from gradlab.optim._learning_rate import (
    LearningRate,
    WithLearningRate,
    learning_rates,
    with_learning_rate,
)
from gradlab.optim.closed_form import (
    IllConditionedWarning,
    lstsq,
    normal_equation,
    ridge,
    ridge_path,
)
from gradlab.optim.mirror_descent import (
    ExponentiatedGradientState,
    exponentiated_gradient,
)
from gradlab.optim.projection import project, projected
from gradlab.optim.proximal import (
    FistaState,
    fista,
    fista_iterate,
    ista,
    prox_elastic_net,
    prox_l1,
    soft_threshold,
)

__all__ = [
    "ExponentiatedGradientState",
    "FistaState",
    "IllConditionedWarning",
    "LearningRate",
    "WithLearningRate",
    "exponentiated_gradient",
    "fista",
    "fista_iterate",
    "ista",
    "learning_rates",
    "lstsq",
    "normal_equation",
    "project",
    "projected",
    "prox_elastic_net",
    "prox_l1",
    "ridge",
    "ridge_path",
    "soft_threshold",
    "with_learning_rate",
]
