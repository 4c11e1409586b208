"""Build the :class:`~gradlab.audit._problem.Problem` of a found pair, by the pair's kind."""

from __future__ import annotations

import numpy as np

from gradlab.audit._discover import Candidate, PairKind
from gradlab.audit._numpy import Rebound
from gradlab.audit._pair_backprop import backprop
from gradlab.audit._pair_functions import functions
from gradlab.audit._pair_methods import methods
from gradlab.audit._problem import Problem
from gradlab.audit._run import Run
from gradlab.audit._source import Source

BUILDERS = {
    PairKind.FUNCTIONS: functions,
    PairKind.VALUE_AND_GRAD: functions,
    PairKind.METHODS: methods,
    PairKind.BACKPROP: backprop,
}


def build(c: Candidate, src: Source, run: Run, rebound: Rebound, seed: int = 0) -> Problem:
    """The :class:`Problem` of a found pair; draws come from a generator seeded by ``seed`` and
    the pair's name (the same draws on every audit).

    Raises:
      ProblemError: one line naming the function and why it cannot be checked.
    """
    rng = np.random.default_rng([seed, sum(map(ord, c.name))])
    return BUILDERS[c.kind](c, src, run, rebound, rng)
